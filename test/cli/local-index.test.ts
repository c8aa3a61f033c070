import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { indexBaseDir, indexFile, openIndex } from "../../cli/local/index-store.js";
import { comparePaths } from "../../cli/local/path-order.js";
import type { IndexEntry, IndexKey } from "../../cli/local/types.js";

const STORE = resolve(__dirname, "../../cli/local/index-store.ts");
const KEY: IndexKey = { server: "https://drive.example", remoteRoot: "backups", localRoot: "/home/u/backups" };

function entry(path: string, n = 0, over: Partial<IndexEntry> = {}): IndexEntry {
  return {
    path,
    kind: "file",
    size: n,
    mtimeNs: 1_700_000_000_123_456_789n + BigInt(n),
    ctimeNs: 1_700_000_000_987_654_321n,
    mode: 0o644,
    dev: 2049n,
    ino: 18_446_744_073_709_551_615n - BigInt(n),
    contentHash: Buffer.alloc(32, n % 256),
    hashKind: 1,
    revision: n + 1,
    ...over,
  };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "local-index-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs a script in a child node that can import the TypeScript sources. */
function child(script: string): { done: Promise<{ code: number | null; signal: string | null; out: string }>; kill(): void; onLine(fn: (l: string) => void): void } {
  const p = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const listeners: ((l: string) => void)[] = [];
  let partial = "";
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

describe("local index", () => {
  it("puts, gets, removes and lists in path order, keeping every field exactly", async () => {
    const idx = await openIndex(KEY, dir);
    const paths = ["b", "a/z", "a-b", "a", "é/x", "\u{1F600}", "\uE000", "a/b/c"];
    await idx.update(paths.map((p, i) => entry(p, i)));
    expect(idx.size).toBe(paths.length);
    expect([...idx.entries()].map((e) => e.path)).toEqual([...paths].sort(comparePaths));
    // Code point order, not UTF-16's: U+E000 before U+1F600.
    expect([...idx.entries()].map((e) => e.path).slice(-2)).toEqual(["\uE000", "\u{1F600}"]);
    const got = idx.get("a/z")!;
    const { recordedNs, ...rest } = got;
    expect(rest).toEqual(entry("a/z", 1));
    expect(typeof recordedNs).toBe("bigint");
    expect(got.ino).toBe(18_446_744_073_709_551_614n);
    expect([...idx.entries("a/")].map((e) => e.path)).toEqual(["a/b/c", "a/z"]);
    await idx.update([entry("c", 9)], ["b", "a-b", "nothing"]);
    expect(idx.get("b")).toBeUndefined();
    expect(idx.get("c")!.size).toBe(9);
    expect(idx.size).toBe(paths.length - 1);
    // A folder keeps an empty hash; a removed-and-put path ends up put.
    await idx.update([entry("f", 0, { kind: "folder", contentHash: Buffer.alloc(0) })], ["f"]);
    expect(idx.get("f")).toMatchObject({ kind: "folder", contentHash: Buffer.alloc(0) });
    await expect(idx.update([entry("../x")])).rejects.toThrow(/refusing/);
    await idx.close();
  });

  it("keeps paths longer than LMDB's key limit, in order", async () => {
    const idx = await openIndex(KEY, dir);
    const head = ("x".repeat(200) + "/").repeat(9) + "é".repeat(100);
    const paths = [head + "/b", head + "/a", head + "é", head, head.slice(0, 1890) + "/short"];
    await idx.update(paths.map((p, i) => entry(p, i)));
    expect([...idx.entries()].map((e) => e.path)).toEqual([...paths].sort(comparePaths));
    for (const p of paths) expect(idx.get(p)?.path).toBe(p);
    expect([...idx.entries(head + "/")].map((e) => e.path)).toEqual([head + "/a", head + "/b"]);
    await idx.move(head, "moved");
    expect([...idx.entries()].map((e) => e.path).sort(comparePaths)).toEqual(["moved", "moved/a", "moved/b", head + "é", head.slice(0, 1890) + "/short"].sort(comparePaths));
    await idx.close();
  });

  it("moves a subtree in one step, replacing what was at the target", async () => {
    const idx = await openIndex(KEY, dir);
    await idx.update(["d", "d/a", "d/s/b", "d-x", "t/old", "t"].map((p) => entry(p)));
    await idx.move("d", "t");
    expect([...idx.entries()].map((e) => e.path)).toEqual(["d-x", "t", "t/a", "t/s/b"]);
    await expect(idx.move("t", "t/s")).rejects.toThrow(/inside/);
    await idx.move("t/a", "n/a");
    expect(idx.get("n/a")).toBeDefined();
    await idx.close();
  });

  it("keeps values and entries across a reopen, and one index per key", async () => {
    let idx = await openIndex(KEY, dir);
    await idx.update([entry("a")]);
    await idx.setValue("cursor", "c-1");
    await idx.setValue("cursor", "c-2");
    await idx.close();
    idx = await openIndex(KEY, dir);
    expect(idx.getValue("cursor")).toBe("c-2");
    expect(idx.get("a")).toBeDefined();
    const other = await openIndex({ ...KEY, localRoot: "/elsewhere" }, dir);
    expect(other.size).toBe(0);
    expect(other.getValue("cursor")).toBeUndefined();
    await other.close();
    await idx.close();
  });

  it("lives under the drive cache folder, and in a temporary one when the cache is off", async () => {
    expect(indexBaseDir({ DRIVE_CACHE_DIR: "/c" })).toBe("/c/index");
    expect(indexBaseDir({ XDG_CACHE_HOME: "/x" })).toBe("/x/drive/index");
    expect(indexBaseDir({ DRIVE_CACHE_DIR: "off" })).toBeNull();
    const idx = await openIndex(KEY, null);
    await idx.update([entry("a")]);
    expect(idx.get("a")).toBeDefined();
    const file = (idx as unknown as { file: string }).file;
    expect(existsSync(file)).toBe(true);
    await idx.close();
    expect(existsSync(file)).toBe(false);
  });

  it("an iteration sees one snapshot while writes go on", async () => {
    const idx = await openIndex(KEY, dir);
    await idx.update(Array.from({ length: 100 }, (_, i) => entry(`f${String(i).padStart(3, "0")}`, i)));
    let seen = 0;
    for (const e of idx.entries()) {
      if (seen === 10) await idx.update([entry("f000-new")], ["f050"]);
      expect(e.path).not.toBe("f000-new");
      seen++;
    }
    expect(seen).toBe(100);
    expect(idx.get("f000-new")).toBeDefined();
    await idx.close();
  });

  it("two processes writing one index at once lose nothing and corrupt nothing", async () => {
    const writer = (name: string) =>
      child(`
        import { openIndex } from ${JSON.stringify(STORE)};
        const idx = await openIndex(${JSON.stringify(KEY)}, ${JSON.stringify(dir)});
        for (let b = 0; b < 40; b++) {
          const puts = [];
          for (let i = 0; i < 500; i++) puts.push({ path: "${name}/" + b + "/" + i, kind: "file", size: i, mtimeNs: 1n, ctimeNs: 2n, mode: 420, dev: 3n, ino: BigInt(b * 1000 + i), contentHash: Buffer.alloc(32), hashKind: 1, revision: b });
          await idx.update(puts);
          await idx.setValue("${name}", String(b));
        }
        await idx.close();
      `);
    const [a, b] = [writer("a"), writer("b")];
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(ra.code, ra.out).toBe(0);
    expect(rb.code, rb.out).toBe(0);
    const idx = await openIndex(KEY, dir);
    expect(idx.size).toBe(40_000);
    expect(idx.getValue("a")).toBe("39");
    expect(idx.getValue("b")).toBe("39");
    expect([...idx.entries("b/39/")].length).toBe(500);
    await idx.close();
  });

  it("killed with SIGKILL mid-write, reopens holding exactly a prefix of the committed batches", async () => {
    for (let round = 0; round < 4; round++) {
      const sub = join(dir, `r${round}`);
      const w = child(`
        import { openIndex } from ${JSON.stringify(STORE)};
        const idx = await openIndex(${JSON.stringify(KEY)}, ${JSON.stringify(sub)});
        for (let b = 0; ; b++) {
          const puts = [];
          for (let i = 0; i < 300; i++) puts.push({ path: "b" + String(b).padStart(5, "0") + "/" + i, kind: "file", size: i, mtimeNs: 1n, ctimeNs: 2n, mode: 420, dev: 3n, ino: 4n, contentHash: Buffer.alloc(32, b % 256), hashKind: 1, revision: b });
          // Each batch also rewrites the previous one's first entry: a torn batch would show.
          if (b > 0) puts.push({ path: "last", kind: "file", size: b, mtimeNs: 1n, ctimeNs: 2n, mode: 420, dev: 3n, ino: 4n, contentHash: Buffer.alloc(32), hashKind: 1, revision: b });
          await idx.update(puts);
          await idx.setValue("cursor", String(b));
          console.log("committed " + b);
        }
      `);
      // Kill after a varying number of committed batches, at a moment the child is mid-batch.
      const want = 3 + round * 7;
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
      const idx = await openIndex(KEY, sub);
      const batches = new Map<number, number>();
      for (const e of idx.entries()) {
        if (e.path === "last") continue;
        const b = Number(e.path.slice(1, 6));
        batches.set(b, (batches.get(b) ?? 0) + 1);
      }
      const n = batches.size;
      // Every batch it printed as committed is there, whole; the batches present are 0..n-1, each whole.
      expect(n).toBeGreaterThanOrEqual(committed + 1);
      for (let b = 0; b < n; b++) expect(batches.get(b)).toBe(300);
      if (n > 1) expect(idx.get("last")!.size).toBe(n - 1);
      const cursor = Number(idx.getValue("cursor"));
      expect(cursor === n - 1 || cursor === n - 2).toBe(true);
      // Usable: it takes writes again.
      await idx.update([entry("after")]);
      expect(idx.get("after")).toBeDefined();
      await idx.close();
    }
  });

  it("holds many entries: 100,000 written in batches, iterated and read back", async () => {
    const idx = await openIndex(KEY, dir);
    for (let b = 0; b < 20; b++) await idx.update(Array.from({ length: 5000 }, (_, i) => entry(`d${b}/f${i}`, i)));
    expect(idx.size).toBe(100_000);
    let n = 0;
    let prev = "";
    for (const e of idx.entries()) {
      expect(comparePaths(prev, e.path)).toBeLessThan(0);
      prev = e.path;
      n++;
    }
    expect(n).toBe(100_000);
    expect(idx.get("d19/f4999")!.size).toBe(4999);
    await idx.close();
    expect((await readdir(dir)).sort()).toEqual([indexFile(dir, KEY).split("/").pop(), indexFile(dir, KEY).split("/").pop() + "-lock"].sort());
  });
});
