import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openSyncState, syncBaseDir, syncStateFile } from "../../cli/sync/state-store.js";
import type { RemoteNode, SyncedNode, SyncKey } from "../../cli/sync/types.js";

const STORE = resolve(__dirname, "../../cli/sync/state-store.ts");
const KEY: SyncKey = { server: "https://drive.example", remoteRoot: "w", localRoot: "/home/u/w" };

function synced(id: string, n = 0, stat = true): SyncedNode {
  return {
    id,
    kind: "file",
    hash: n.toString(16).padStart(64, "0"),
    size: n,
    mode: 0o644,
    mtimeUs: 1_700_000_000_000_000 + n,
    ...(stat ? { stat: { dev: 2049n, ino: 18_446_744_073_709_551_615n - BigInt(n), size: n, mtimeNs: 1_700_000_000_123_456_789n, ctimeNs: 1_700_000_000_987_654_321n, mode: 0o100644, recordedNs: 1_700_000_001_000_000_000n } } : {}),
  };
}
const folder = (id: string): SyncedNode => ({ id, kind: "folder", hash: "", size: 0, mode: 0, mtimeUs: 0 });
const remote = (id: string, revision: number): RemoteNode => ({ ...synced(id, revision, false), revision });

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "sync-state-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs a script in a child node that can import the TypeScript sources. */
function child(script: string): { done: Promise<{ code: number | null; signal: string | null; out: string }>; kill(): void; onLine(fn: (l: string) => void): void } {
  const p = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let partial = "";
  const listeners: ((l: string) => void)[] = [];
  p.stdout.on("data", (d: Buffer) => {
    out += d;
    partial += d;
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const l of lines) for (const fn of listeners) fn(l);
  });
  p.stderr.on("data", (d: Buffer) => (err += d));
  return {
    done: new Promise((res) => p.on("close", (code, signal) => res({ code, signal, out: out + (err ? `\nstderr: ${err}` : "") }))),
    kill: () => p.kill("SIGKILL"),
    onLine: (fn) => listeners.push(fn),
  };
}

describe("sync state", () => {
  it("keeps both trees, the cursor and the values across a reopen, every field exact", async () => {
    const s = await openSyncState(KEY, dir);
    expect(s.synced.size).toBe(0);
    expect(s.cursor).toBe("");
    await s.editSynced([
      { type: "set", path: "a", node: folder("n1") },
      { type: "set", path: "a/x", node: synced("n2", 5) },
      { type: "set", path: "é/y", node: synced("n3", 6, false) },
    ]);
    await s.editRemote([{ type: "set", path: "a/x", node: remote("r1", 7) }], "c1");
    await s.setValue("marker", "m-1");
    await s.setValue("gone", "x");
    await s.setValue("gone", undefined);
    expect(s.remote.get("a/x")).toEqual(remote("r1", 7));
    await s.close();

    const t = await openSyncState(KEY, dir);
    expect([...t.synced]).toEqual([
      ["a", folder("n1")],
      ["a/x", synced("n2", 5)],
      ["é/y", synced("n3", 6, false)],
    ]);
    expect([...t.remote]).toEqual([["a/x", remote("r1", 7)]]);
    expect(t.cursor).toBe("c1");
    expect(t.getValue("marker")).toBe("m-1");
    expect(t.getValue("gone")).toBeUndefined();
    await t.close();
  });

  it("hands out ids unique across reopens, a crash included", async () => {
    const seen = new Set<string>();
    for (let round = 0; round < 3; round++) {
      const s = await openSyncState(KEY, dir);
      for (let i = 0; i < 5000; i++) seen.add(s.newId());
      await s.close();
    }
    expect(seen.size).toBe(15_000);
    // A process killed after taking ids, before any other write: its ids are never handed out again.
    const w = child(`
      import { openSyncState } from ${JSON.stringify(STORE)};
      const s = await openSyncState(${JSON.stringify(KEY)}, ${JSON.stringify(dir)});
      const ids = [];
      for (let i = 0; i < 10; i++) ids.push(s.newId());
      console.log(JSON.stringify(ids));
      process.kill(process.pid, "SIGKILL");
    `);
    const r = await w.done;
    expect(r.signal, r.out).toBe("SIGKILL");
    const theirs: string[] = JSON.parse(r.out.split("\n")[0]!);
    const s = await openSyncState(KEY, dir);
    for (let i = 0; i < 100; i++) expect(theirs).not.toContain(s.newId());
    await s.close();
  });

  it("moves a whole subtree, replacing what was at the destination, in memory and on disk", async () => {
    const s = await openSyncState(KEY, dir);
    await s.editSynced([
      { type: "set", path: "a", node: folder("a") },
      { type: "set", path: "a/x", node: synced("x", 1) },
      { type: "set", path: "a/sub/y", node: synced("y", 2) },
      { type: "set", path: "a-b", node: synced("ab", 3) },
      { type: "set", path: "b/old", node: synced("old", 4) },
      { type: "set", path: "b", node: folder("b") },
    ]);
    await s.editSynced([{ type: "move", from: "a", to: "b" }, { type: "set", path: "b/new", node: synced("new", 5) }]);
    const want = [
      ["a-b", "ab"],
      ["b", "a"],
      ["b/new", "new"],
      ["b/sub/y", "y"],
      ["b/x", "x"],
    ];
    const ids = (t: ReadonlyMap<string, SyncedNode>) => [...t].map(([p, n]) => [p, n.id]).sort((x, y) => (x[0]! < y[0]! ? -1 : 1));
    expect(ids(s.synced)).toEqual(want);
    // A move onto its own subtree does nothing, as applySteps says.
    await s.editSynced([{ type: "move", from: "b", to: "b/sub/z" }]);
    expect(ids(s.synced)).toEqual(want);
    await s.close();
    const t = await openSyncState(KEY, dir);
    expect(ids(t.synced)).toEqual(want);
    await t.close();
  });

  it("replace clears the remote tree first; the cursor goes with the same transaction", async () => {
    const s = await openSyncState(KEY, dir);
    await s.editRemote([{ type: "set", path: "old", node: remote("o", 1) }, { type: "set", path: "keep", node: remote("k", 1) }], "c1");
    await s.editRemote([{ type: "set", path: "keep", node: remote("k", 2) }, { type: "set", path: "new", node: remote("n", 3) }], "c2", { replace: true });
    expect([...s.remote.keys()].sort()).toEqual(["keep", "new"]);
    await s.close();
    const t = await openSyncState(KEY, dir);
    expect([...t.remote.keys()].sort()).toEqual(["keep", "new"]);
    expect(t.remote.get("keep")!.revision).toBe(2);
    expect(t.cursor).toBe("c2");
    await t.close();
  });

  it("keeps paths longer than an LMDB key, and moves them", async () => {
    const long = Array.from({ length: 15 }, (_, i) => `${"é".repeat(100)}${i}`).join("/"); // 3000+ bytes
    const s = await openSyncState(KEY, dir);
    await s.editSynced([
      { type: "set", path: `d/${long}`, node: synced("l1", 1) },
      { type: "set", path: `d/${long}x`, node: synced("l2", 2) },
    ]);
    await s.editSynced([{ type: "move", from: "d", to: "e" }]);
    await s.close();
    const t = await openSyncState(KEY, dir);
    expect([...t.synced.keys()].sort()).toEqual([`e/${long}`, `e/${long}x`]);
    expect(t.synced.get(`e/${long}x`)!.id).toBe("l2");
    await t.close();
  });

  it("refuses a second sync of the same root, and takes over a lock whose process died", async () => {
    const s = await openSyncState(KEY, dir);
    await expect(openSyncState(KEY, dir)).rejects.toThrow(/another drive sync is running on \/home\/u\/w/);
    // Another root is another state.
    const other = await openSyncState({ ...KEY, localRoot: "/home/u/v" }, dir);
    await other.close();
    await s.close();

    const w = child(`
      import { openSyncState } from ${JSON.stringify(STORE)};
      await openSyncState(${JSON.stringify(KEY)}, ${JSON.stringify(dir)});
      console.log("open");
      process.kill(process.pid, "SIGKILL");
    `);
    expect((await w.done).signal).toBe("SIGKILL");
    expect(existsSync(`${syncStateFile(dir, KEY)}-sync.lock`)).toBe(true);
    const t = await openSyncState(KEY, dir);
    await t.close();
    expect(existsSync(`${syncStateFile(dir, KEY)}-sync.lock`)).toBe(false);
  });

  it("says to remove a corrupt state, and one of another format", async () => {
    const file = syncStateFile(dir, KEY);
    await writeFile(file, Buffer.alloc(64 * 1024, 0x5a));
    await expect(openSyncState(KEY, dir)).rejects.toThrow(/sync state cannot be read .*remove it/);
    // The failed open let go of its lock.
    await rm(file);
    await rm(`${file}-lock`, { force: true });
    const s = await openSyncState(KEY, dir);
    await s.close();

    const w = child(`
      import { open } from "lmdb";
      const env = open({ path: ${JSON.stringify(file)}, maxDbs: 5 });
      await env.openDB({ name: "meta", encoding: "string" }).put("format", "sync-0");
      await env.close();
    `);
    expect((await w.done).code).toBe(0);
    await expect(openSyncState(KEY, dir)).rejects.toThrow(/format sync-0.*remove it/);
  });

  it("killed with SIGKILL mid-write, reopens as before or after each transaction", async () => {
    for (let round = 0; round < 3; round++) {
      const sub = join(dir, `r${round}`);
      const w = child(`
        import { openSyncState } from ${JSON.stringify(STORE)};
        const s = await openSyncState(${JSON.stringify(KEY)}, ${JSON.stringify(sub)});
        const node = (id, b) => ({ id, kind: "file", hash: "", size: b, mode: 0, mtimeUs: 0 });
        for (let b = 0; ; b++) {
          // Each batch moves the last batch's folder whole and adds 200 files: a torn one would show.
          const steps = [];
          if (b > 0) steps.push({ type: "move", from: "b" + (b - 1), to: "b" + b });
          for (let i = 0; i < 200; i++) steps.push({ type: "set", path: "b" + b + "/f" + b + "-" + i, node: node(s.newId(), b) });
          await s.editSynced(steps);
          await s.editRemote([{ type: "set", path: "r", node: { ...node("r", b), revision: b } }], "c" + b);
          console.log("committed " + b);
        }
      `);
      const want = 2 + round * 5;
      let committed = -1;
      await new Promise<void>((res) =>
        w.onLine((l) => {
          const m = /^committed (\d+)$/.exec(l);
          if (m) committed = Number(m[1]);
          if (committed >= want) {
            w.kill();
            res();
          }
        }),
      );
      const r = await w.done;
      expect(r.signal, r.out).toBe("SIGKILL");
      const s = await openSyncState(KEY, sub);
      const paths = [...s.synced.keys()];
      const n = paths.length / 200; // batches 0..n-1, all under b(n-1)
      expect(Number.isInteger(n)).toBe(true);
      expect(n).toBeGreaterThanOrEqual(committed + 1);
      expect(paths.every((p) => p.startsWith(`b${n - 1}/`))).toBe(true);
      expect(new Set([...s.synced.values()].map((v) => v.id)).size).toBe(paths.length);
      const rev = s.remote.get("r")!.revision;
      expect(s.cursor).toBe(`c${rev}`);
      expect(rev === n - 1 || rev === n - 2).toBe(true);
      // Usable, and its ids new.
      const id = s.newId();
      expect([...s.synced.values()].some((v) => v.id === id)).toBe(false);
      await s.editSynced([{ type: "set", path: "after", node: synced(id) }]);
      await s.close();
    }
  });

  it("lives in DRIVE_CACHE_DIR/sync, XDG_CACHE_HOME/drive/sync or a temporary folder", async () => {
    expect(syncBaseDir({ DRIVE_CACHE_DIR: "/c" })).toBe("/c/sync");
    expect(syncBaseDir({ DRIVE_CACHE_DIR: "off" })).toBeNull();
    expect(syncBaseDir({ XDG_CACHE_HOME: "/x" })).toBe("/x/drive/sync");
    const before = (await readdir(tmpdir())).filter((f) => f.startsWith("drive-sync-")).length;
    const s = await openSyncState(KEY, null);
    await s.editSynced([{ type: "set", path: "a", node: synced("a") }]);
    await s.close();
    expect((await readdir(tmpdir())).filter((f) => f.startsWith("drive-sync-")).length).toBe(before);
  });
});
