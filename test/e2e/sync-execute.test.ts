import { randomBytes } from "node:crypto";
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EntryKind, ContentHashKind } from "../../gen/drive/v1/types_pb.js";
import { connectDrive, type DriveClient } from "../../cli/rpc/drive-client.js";
import { localStatOf, nowNs } from "../../cli/sync/exec-check.js";
import { executePlan } from "../../cli/sync/execute.js";
import { applySteps } from "../../cli/sync/plan-effects.js";
import type { ExecuteOptions, LocalNode, OpOutcome, RemoteNode, SyncedNode, SyncOp, SyncState, TreeStep } from "../../cli/sync/types.js";
import type { RunEvent } from "../../cli/transfer/events.js";
import { scanFile } from "../../cli/transfer/scan-file.js";
import { microsOf, microsOfNs } from "../../cli/tree/tree-attrs.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";

/** The state store, in memory: the same model plan-effects.ts applies, and a count of transactions. */
class MemState implements SyncState {
  readonly synced = new Map<string, SyncedNode>();
  readonly remote = new Map<string, RemoteNode>();
  cursor = "";
  edits = 0;
  private values = new Map<string, string>();
  private ids = 0;
  async editSynced(steps: TreeStep<SyncedNode>[]): Promise<void> {
    this.edits++;
    applySteps(this.synced, steps);
  }
  async editRemote(steps: TreeStep<RemoteNode>[], cursor: string): Promise<void> {
    applySteps(this.remote, steps);
    this.cursor = cursor;
  }
  getValue(key: string): string | undefined {
    return this.values.get(key);
  }
  async setValue(key: string, value: string | undefined): Promise<void> {
    if (value === undefined) this.values.delete(key);
    else this.values.set(key, value);
  }
  newId(): string {
    return `id${++this.ids}`;
  }
  async close(): Promise<void> {}
}

let server: TestServer;
let client: DriveClient;
let work: string;
let n = 0;

beforeAll(async () => {
  server = await startDriveServer();
  client = connectDrive({ server: server.url, token: server.adminToken });
  work = await mkdtemp(join(tmpdir(), "drive-sync-exec-"));
});
afterAll(async () => {
  client?.close();
  await server?.stop();
  await rm(work, { recursive: true, force: true });
});

/** A fresh local root and remote folder for one test. */
async function fixture() {
  const name = `t${++n}`;
  const root = join(work, name, "root");
  await mkdir(root, { recursive: true });
  const state = new MemState();
  const events: RunEvent[] = [];
  const opts = (signal = new AbortController().signal): ExecuteOptions => ({ root, remote: name, concurrency: 4, compress: "auto", signal });
  const run = (ops: SyncOp[], signal?: AbortSignal) => executePlan(client, state, ops, opts(signal), (e) => events.push(e));
  return { name, root, state, events, run, abs: (rel: string) => join(root, rel), remotePath: (rel: string) => `${name}/${rel}` };
}

/** The disk entry as a scan would give it. */
async function localNode(abs: string, id = "L"): Promise<LocalNode> {
  const recordedNs = nowNs();
  const st = await lstat(abs, { bigint: true });
  const stat = localStatOf(st, recordedNs);
  if (st.isDirectory()) return { id, kind: "folder", hash: "", size: 0, mode: 0, mtimeUs: 0, stat };
  const hash = (await scanFile(abs)).contentHash.toString("hex");
  return { id, kind: "file", hash, size: stat.size, mode: stat.mode & 0o777, mtimeUs: Number(microsOfNs(st.mtimeNs)), stat };
}

/** The server's entry as the remote tree would hold it. */
async function remoteNode(path: string, id = "R"): Promise<RemoteNode> {
  const f = (await client.files.stat({ path })).file!;
  const folder = f.kind === EntryKind.FOLDER;
  const hex = Buffer.from(f.contentHash).toString("hex");
  return {
    id,
    kind: folder ? "folder" : "file",
    hash: folder ? "" : f.contentHashKind === ContentHashKind.CHUNK_LIST ? `cl:${hex}` : hex,
    size: Number(f.size),
    mode: f.mode & 0o777,
    mtimeUs: Number(microsOf(f.mtime) ?? 0n),
    revision: Number(f.revision),
  };
}

async function remoteInfo(path: string) {
  return (await client.files.stat({ path }).catch(() => null))?.file ?? null;
}

/** Puts content on the server at path, as another device would: through the executor on a scratch root. */
async function serverPut(path: string, content: Buffer | string, mode = 0o644): Promise<void> {
  const scratch = await mkdtemp(join(work, "scratch-"));
  await writeFile(join(scratch, "f"), content);
  await chmod(join(scratch, "f"), mode);
  const info = await remoteInfo(path);
  const base = info && !info.deleted ? Number(info.revision) : 0;
  const slash = path.lastIndexOf("/");
  // The scratch root's "f" is sent to the remote path: remote folder = the path's folder.
  const remote = path.slice(0, slash);
  const name = path.slice(slash + 1);
  await rm(join(scratch, "f"));
  await writeFile(join(scratch, name), content);
  await chmod(join(scratch, name), mode);
  const local = await localNode(join(scratch, name));
  const out = await executePlan(client, new MemState(), [{ type: "upload", path: name, id: "x", local, baseRevision: base, why: "local_new" }], { root: scratch, remote, concurrency: 2, compress: "auto", signal: new AbortController().signal }, () => {});
  expect(out[0]!.outcome, out[0]!.message).toBe("done");
}

const outcomeOf = (outs: OpOutcome[]) => outs.map((o) => [o.op.type, o.outcome]);

describe("executePlan", () => {
  it("uploads, and skips an upload whose file changed since the plan or whose server revision moved on", async () => {
    const f = await fixture();
    await writeFile(f.abs("a.txt"), "alpha");
    await chmod(f.abs("a.txt"), 0o640);
    await writeFile(f.abs("changed.txt"), "before");
    await writeFile(f.abs("raced.txt"), "mine");
    const a = await localNode(f.abs("a.txt"));
    const changed = await localNode(f.abs("changed.txt"));
    const raced = await localNode(f.abs("raced.txt"));
    await writeFile(f.abs("changed.txt"), "after the scan");
    await serverPut(f.remotePath("raced.txt"), "theirs");
    const outs = await f.run([
      { type: "upload", path: "a.txt", id: "a", local: a, baseRevision: 0, why: "local_new" },
      { type: "upload", path: "changed.txt", id: "c", local: changed, baseRevision: 0, why: "local_new" },
      { type: "upload", path: "raced.txt", id: "r", local: raced, baseRevision: 0, why: "local_new" },
    ]);
    expect(outcomeOf(outs).sort()).toEqual([
      ["upload", "done"],
      ["upload", "skipped"],
      ["upload", "skipped"],
    ]);
    const info = (await remoteInfo(f.remotePath("a.txt")))!;
    expect(info.mode).toBe(0o640);
    expect(Number(microsOf(info.mtime))).toBe(a.mtimeUs);
    expect([...f.state.synced.keys()]).toEqual(["a.txt"]);
    expect(f.state.edits).toBe(1);
    expect(f.state.synced.get("a.txt")).toMatchObject({ id: "a", hash: a.hash, stat: { ino: a.stat.ino } });
    expect(await remoteInfo(f.remotePath("changed.txt"))).toBeNull();
    expect(outs.find((o) => o.op.type === "upload" && o.op.path === "raced.txt")!.message).toMatch(/revision|conflict/i);
    expect(f.events.filter((e) => e.type === "sync_op").map((e) => (e as { outcome: string }).outcome).sort()).toEqual(["done", "skipped", "skipped"]);
  });

  it("uploads a large file on its base revision, and downloads it back", async () => {
    const f = await fixture();
    await serverPut(f.remotePath("big.bin"), "small first");
    const base = await remoteNode(f.remotePath("big.bin"));
    const big = randomBytes(9 * 1024 * 1024);
    await writeFile(f.abs("big.bin"), big);
    const local = await localNode(f.abs("big.bin"));
    const stale = await f.run([{ type: "upload", path: "big.bin", id: "b", local, baseRevision: base.revision - 1 || 99, why: "local_edit" }]);
    expect(outcomeOf(stale)).toEqual([["upload", "skipped"]]);
    const outs = await f.run([{ type: "upload", path: "big.bin", id: "b", local, baseRevision: base.revision, why: "local_edit" }]);
    expect(outs[0]!.outcome, outs[0]!.message).toBe("done");
    const remote = await remoteNode(f.remotePath("big.bin"), "b");
    expect(remote.revision).toBe(base.revision + 1);
    expect(remote.hash).toBe(local.hash);
    expect(f.state.synced.get("big.bin")?.stat?.ino).toBe(local.stat.ino);

    await rm(f.abs("big.bin"));
    const back = await f.run([{ type: "download", path: "big.bin", remote, replaces: null, why: "remote_new" }]);
    expect(back[0]!.outcome, back[0]!.message).toBe("done");
    expect((await readFile(f.abs("big.bin"))).equals(big)).toBe(true);
    expect((await stat(f.abs("big.bin"))).mode & 0o777).toBe(remote.mode);
    expect(f.state.synced.get("big.bin")?.stat?.ino).toBe((await lstat(f.abs("big.bin"), { bigint: true })).ino);
  });

  it("downloads, making parents; skips when the local file changed, appeared, or the server moved on", async () => {
    const f = await fixture();
    await serverPut(f.remotePath("d/new.txt"), "from the server", 0o600);
    await serverPut(f.remotePath("edit.txt"), "server edit");
    await serverPut(f.remotePath("appeared.txt"), "server");
    await serverPut(f.remotePath("moved-on.txt"), "v1");
    const fresh = await remoteNode(f.remotePath("d/new.txt"));
    const edit = await remoteNode(f.remotePath("edit.txt"));
    const appeared = await remoteNode(f.remotePath("appeared.txt"));
    const movedOn = await remoteNode(f.remotePath("moved-on.txt"));
    await serverPut(f.remotePath("moved-on.txt"), "v2");
    await writeFile(f.abs("edit.txt"), "local");
    const replaces = await localNode(f.abs("edit.txt"));
    await writeFile(f.abs("edit.txt"), "local, edited after the plan");
    await writeFile(f.abs("appeared.txt"), "made here after the plan");
    const outs = await f.run([
      { type: "download", path: "d/new.txt", remote: fresh, replaces: null, why: "remote_new" },
      { type: "download", path: "edit.txt", remote: edit, replaces, why: "remote_edit" },
      { type: "download", path: "appeared.txt", remote: appeared, replaces: null, why: "remote_new" },
      { type: "download", path: "moved-on.txt", remote: movedOn, replaces: null, why: "remote_new" },
    ]);
    expect(outs.map((o) => [o.op.type === "download" && o.op.path, o.outcome])).toEqual(
      expect.arrayContaining([
        ["d/new.txt", "done"],
        ["edit.txt", "skipped"],
        ["appeared.txt", "skipped"],
        ["moved-on.txt", "skipped"],
      ]),
    );
    expect(await readFile(f.abs("d/new.txt"), "utf8")).toBe("from the server");
    expect((await stat(f.abs("d/new.txt"))).mode & 0o777).toBe(0o600);
    expect(await readFile(f.abs("edit.txt"), "utf8")).toBe("local, edited after the plan");
    expect(await readFile(f.abs("appeared.txt"), "utf8")).toBe("made here after the plan");
    expect(await readdir(f.root)).not.toContain("moved-on.txt");
    expect([...f.state.synced.keys()]).toEqual(["d/new.txt"]);
    expect(f.state.synced.get("d/new.txt")).toMatchObject({ hash: fresh.hash, stat: { ino: (await lstat(f.abs("d/new.txt"), { bigint: true })).ino } });
    // Nothing left behind: no temporary files.
    expect((await readdir(f.root)).filter((x) => x.includes("partial"))).toEqual([]);
  });

  it("never writes outside the root, whatever path a plan names", async () => {
    const f = await fixture();
    await serverPut(f.remotePath("ok.txt"), "fine");
    await serverPut(f.remotePath("link/through.txt"), "fine");
    const r = await remoteNode(f.remotePath("ok.txt"));
    const through = await remoteNode(f.remotePath("link/through.txt"));
    const outside = join(work, f.name);
    // A link planted inside the root, to a folder outside it.
    await mkdir(join(outside, "elsewhere"));
    await symlink(join(outside, "elsewhere"), f.abs("link"));
    const outs = await f.run([
      { type: "download", path: "../escape.txt", remote: r, replaces: null, why: "remote_new" },
      { type: "download", path: "a/../../escape2.txt", remote: r, replaces: null, why: "remote_new" },
      { type: "download", path: "link/through.txt", remote: through, replaces: null, why: "remote_new" },
      { type: "local_mkdir", path: "../outdir", remote: { ...r, kind: "folder", hash: "", size: 0 }, why: "remote_new" },
      { type: "local_mkdir", path: "link/made", remote: { ...r, kind: "folder", hash: "", size: 0 }, why: "remote_new" },
    ]);
    expect(outs.map((o) => [o.outcome, o.code])).toEqual(outs.map(() => ["failed", "integrity"]));
    expect(outs.map((o) => o.message).join("\n")).toMatch(/link.*symbolic link/);
    expect((await readdir(outside)).sort()).toEqual(["elsewhere", "root"]);
    expect(await readdir(join(outside, "elsewhere"))).toEqual([]);
    expect(await readdir(f.root)).toEqual(["link"]);

    // The plan saw sub/x.txt; then sub moved out of the root and a link took its place: the very same inode, now outside.
    await mkdir(f.abs("sub"));
    await writeFile(f.abs("sub/x.txt"), "x");
    await writeFile(f.abs("sub/y.txt"), "y");
    const x = await localNode(f.abs("sub/x.txt"));
    const y = await localNode(f.abs("sub/y.txt"));
    await rename(f.abs("sub"), join(outside, "sub"));
    await symlink(join(outside, "sub"), f.abs("sub"));
    const outs2 = await f.run([
      { type: "local_delete", path: "sub/x.txt", local: x, why: "remote_delete" },
      { type: "local_move", from: "sub/y.txt", to: "y.txt", local: y, why: "remote_move" },
      { type: "upload", path: "sub/y.txt", id: "y", local: y, baseRevision: 0, why: "local_new" },
    ]);
    expect(outs2.map((o) => [o.op.type, o.outcome, o.code])).toEqual([
      ["local_delete", "failed", "integrity"],
      ["local_move", "failed", "integrity"],
      ["upload", "failed", "integrity"],
    ]);
    expect((await readdir(join(outside, "sub"))).sort()).toEqual(["x.txt", "y.txt"]);
    expect(await remoteInfo(f.remotePath("sub/y.txt"))).toBeNull();
    expect(f.state.synced.size).toBe(0);
  });

  it("makes folders, sets attributes and moves on both sides; skips on a moved revision or a taken destination", async () => {
    const f = await fixture();
    await serverPut(f.remotePath("attrs.txt"), "same bytes", 0o644);
    await serverPut(f.remotePath("mv-from.txt"), "moving");
    await serverPut(f.remotePath("mv-taken.txt"), "moving too");
    await serverPut(f.remotePath("taken.txt"), "in the way");
    await serverPut(f.remotePath("stale.txt"), "v1");
    const staleRev = (await remoteNode(f.remotePath("stale.txt"))).revision;
    await serverPut(f.remotePath("stale.txt"), "v2");
    const attrsRev = (await remoteNode(f.remotePath("attrs.txt"))).revision;
    const mvRev = (await remoteNode(f.remotePath("mv-from.txt"))).revision;
    const takenRev = (await remoteNode(f.remotePath("mv-taken.txt"))).revision;
    await writeFile(f.abs("attrs.txt"), "same bytes");
    await chmod(f.abs("attrs.txt"), 0o755);
    const attrsLocal = await localNode(f.abs("attrs.txt"));
    const outs = await f.run([
      { type: "remote_move", from: "mv-from.txt", to: "moved/here.txt", kind: "file", baseRevision: mvRev, why: "local_move" },
      { type: "remote_move", from: "mv-taken.txt", to: "taken.txt", kind: "file", baseRevision: takenRev, why: "local_move" },
      { type: "remote_move", from: "stale.txt", to: "stale2.txt", kind: "file", baseRevision: staleRev, why: "local_move" },
      { type: "remote_mkdir", path: "empty/inner", id: "e", why: "local_new" },
      { type: "remote_attrs", path: "attrs.txt", id: "at", local: attrsLocal, baseRevision: attrsRev, why: "local_attrs" },
    ]);
    expect(outs.map((o) => [o.op.type, o.outcome])).toEqual([
      ["remote_move", "done"],
      ["remote_move", "skipped"],
      ["remote_move", "skipped"],
      ["remote_mkdir", "done"],
      ["remote_attrs", "done"],
    ]);
    expect(await remoteInfo(f.remotePath("moved/here.txt"))).toMatchObject({ deleted: false });
    expect((await remoteInfo(f.remotePath("empty/inner")))?.kind).toBe(EntryKind.FOLDER);
    const attrs = (await remoteInfo(f.remotePath("attrs.txt")))!;
    expect([attrs.mode, Number(attrs.revision)]).toEqual([0o755, attrsRev + 1]);
    // A folder entry already there is the same folder; a file there is not.
    const mk = await f.run([
      { type: "remote_mkdir", path: "empty/inner", id: "e", why: "local_new" },
      { type: "remote_mkdir", path: "taken.txt", id: "t", why: "local_new" },
    ]);
    expect(mk.map((o) => o.outcome).sort()).toEqual(["done", "skipped"]);
    // A second remote_attrs on the old base: the server moved on.
    const again = await f.run([{ type: "remote_attrs", path: "attrs.txt", id: "at", local: { ...attrsLocal, mode: 0o700, stat: { ...attrsLocal.stat } }, baseRevision: attrsRev, why: "local_attrs" }]);
    expect(again[0]!.outcome).toBe("skipped");

    // Local: mkdir, attrs, move, conflicted copy, and their refusals.
    await serverPut(f.remotePath("la.txt"), "attrs here", 0o600);
    const laRemote = await remoteNode(f.remotePath("la.txt"));
    await writeFile(f.abs("la.txt"), "attrs here");
    await writeFile(f.abs("mine.txt"), "mine");
    await writeFile(f.abs("blocked.txt"), "blocked");
    await writeFile(f.abs("blocker.txt"), "blocker");
    await writeFile(f.abs("conflict.txt"), "conflicting");
    await mkdir(f.abs("dir/sub"), { recursive: true });
    await writeFile(f.abs("file-here"), "not a folder");
    await writeFile(f.abs("dir/sub/x.txt"), "x");
    const la = await localNode(f.abs("la.txt"));
    const mine = await localNode(f.abs("mine.txt"));
    const blocked = await localNode(f.abs("blocked.txt"));
    const conflict = await localNode(f.abs("conflict.txt"));
    const dir = await localNode(f.abs("dir"));
    const folder = { ...laRemote, kind: "folder" as const, hash: "", size: 0, mode: 0, mtimeUs: 0, revision: 0 };
    const outs2 = await f.run([
      { type: "local_move", from: "mine.txt", to: "deep/er/mine.txt", local: mine, why: "remote_move" },
      { type: "local_move", from: "blocked.txt", to: "blocker.txt", local: blocked, why: "remote_move" },
      { type: "local_move", from: "dir", to: "dir2", local: dir, why: "remote_move" },
      { type: "conflict_copy", path: "conflict.txt", to: "conflict (conflicted copy).txt", local: conflict, synced: { ...conflict, id: "s" }, why: "conflict" },
      { type: "local_mkdir", path: "made/here", remote: folder, why: "remote_new" },
      { type: "local_mkdir", path: "file-here", remote: folder, why: "remote_new" },
      { type: "local_attrs", path: "la.txt", local: la, remote: laRemote, why: "remote_attrs" },
    ]);
    expect(outs2.map((o) => [o.op.type, o.outcome])).toEqual([
      ["local_move", "done"],
      ["local_move", "skipped"],
      ["local_move", "done"],
      ["conflict_copy", "done"],
      ["local_mkdir", "done"],
      ["local_mkdir", "skipped"],
      ["local_attrs", "done"],
    ]);
    expect(await readFile(f.abs("deep/er/mine.txt"), "utf8")).toBe("mine");
    expect(await readFile(f.abs("blocker.txt"), "utf8")).toBe("blocker");
    expect(await readFile(f.abs("blocked.txt"), "utf8")).toBe("blocked");
    expect(await readFile(f.abs("dir2/sub/x.txt"), "utf8")).toBe("x");
    expect(await readFile(f.abs("conflict (conflicted copy).txt"), "utf8")).toBe("conflicting");
    expect((await stat(f.abs("made/here"))).isDirectory()).toBe(true);
    const laNow = await lstat(f.abs("la.txt"), { bigint: true });
    expect(Number(laNow.mode & 0o777n)).toBe(0o600);
    expect(Number(microsOfNs(laNow.mtimeNs))).toBe(laRemote.mtimeUs);
    expect(f.state.synced.get("la.txt")?.stat?.ctimeNs).toBe(laNow.ctimeNs);
    expect(f.state.synced.get("made/here")?.kind).toBe("folder");
    // Refused: attributes of a file edited since the plan, a conflicted copy onto a taken name.
    await writeFile(f.abs("la2.txt"), "attrs");
    await writeFile(f.abs("c2.txt"), "mine");
    await writeFile(f.abs("c2 (copy).txt"), "already here");
    const la2 = await localNode(f.abs("la2.txt"));
    const c2 = await localNode(f.abs("c2.txt"));
    await writeFile(f.abs("la2.txt"), "attrs, and an edit after the plan");
    const refused = await f.run([
      { type: "local_attrs", path: "la2.txt", local: la2, remote: laRemote, why: "remote_attrs" },
      { type: "conflict_copy", path: "c2.txt", to: "c2 (copy).txt", local: c2, why: "conflict" },
    ]);
    expect(refused.map((o) => o.outcome)).toEqual(["skipped", "skipped"]);
    expect((await stat(f.abs("la2.txt"))).mode & 0o777).not.toBe(0o600);
    expect(await readFile(f.abs("c2 (copy).txt"), "utf8")).toBe("already here");
    expect(await readFile(f.abs("c2.txt"), "utf8")).toBe("mine");
    expect(f.state.synced.has("la2.txt")).toBe(false);
    // The conflicted path keeps Synced's node without its stat.
    expect(f.state.synced.get("conflict.txt")).toMatchObject({ id: "s" });
    expect(f.state.synced.get("conflict.txt")?.stat).toBeUndefined();
  });

  it("deletes on both sides, each only as the plan saw it; a folder only when empty", async () => {
    const f = await fixture();
    await serverPut(f.remotePath("rm/gone.txt"), "delete me");
    await serverPut(f.remotePath("rm/stale.txt"), "v1");
    const gone = await remoteNode(f.remotePath("rm/gone.txt"));
    const staleRev = (await remoteNode(f.remotePath("rm/stale.txt"))).revision;
    await serverPut(f.remotePath("rm/stale.txt"), "v2");
    await mkdir(f.abs("full"), { recursive: true });
    await mkdir(f.abs("empty"));
    await writeFile(f.abs("full/a.txt"), "a");
    await writeFile(f.abs("del.txt"), "del");
    await writeFile(f.abs("edited.txt"), "before");
    const full = await localNode(f.abs("full"));
    const empty = await localNode(f.abs("empty"));
    const del = await localNode(f.abs("del.txt"));
    const edited = await localNode(f.abs("edited.txt"));
    await writeFile(f.abs("edited.txt"), "after the plan");
    for (const p of ["rm/gone.txt", "rm/stale.txt", "rm", "full", "empty", "del.txt", "edited.txt"]) f.state.synced.set(p, { id: p, kind: "file", hash: "", size: 0, mode: 0, mtimeUs: 0 });
    const outs = await f.run([
      { type: "remote_delete", path: "rm/gone.txt", kind: "file", baseRevision: gone.revision, why: "local_delete" },
      { type: "remote_delete", path: "rm/stale.txt", kind: "file", baseRevision: staleRev, why: "local_delete" },
      { type: "remote_delete", path: "rm", kind: "folder", baseRevision: 0, why: "local_delete" },
      { type: "local_delete", path: "del.txt", local: del, why: "remote_delete" },
      { type: "local_delete", path: "edited.txt", local: edited, why: "remote_delete" },
      { type: "local_delete", path: "full", local: full, why: "remote_delete" },
      { type: "local_delete", path: "empty", local: empty, why: "remote_delete" },
    ]);
    expect(outs.map((o) => [o.op.type === "remote_delete" || o.op.type === "local_delete" ? o.op.path : "", o.outcome]).sort()).toEqual([
      ["rm/gone.txt", "done"],
      ["rm/stale.txt", "skipped"],
      // Its file stays on the server: so does the folder (only implied here, so nothing to call), and Synced keeps it.
      ["rm", "skipped"],
      ["del.txt", "done"],
      ["edited.txt", "skipped"],
      ["full", "skipped"],
      ["empty", "done"],
    ].sort());
    expect(await remoteInfo(f.remotePath("rm/gone.txt"))).toBeNull();
    expect((await remoteInfo(f.remotePath("rm/stale.txt")))?.deleted).toBe(false);
    expect((await readdir(f.root)).sort()).toEqual(["edited.txt", "full"]);
    expect([...f.state.synced.keys()].sort()).toEqual(["edited.txt", "full", "rm", "rm/stale.txt"]);
  });

  it("rejects when the state cannot be written", async () => {
    const f = await fixture();
    await writeFile(f.abs("a.txt"), "alpha");
    const state = new MemState();
    state.editSynced = async () => {
      throw new Error("disk full");
    };
    const op: SyncOp = { type: "upload", path: "a.txt", id: "a", local: await localNode(f.abs("a.txt")), baseRevision: 0, why: "local_new" };
    await expect(executePlan(client, state, [op], { root: f.root, remote: f.name, concurrency: 2, compress: "auto", signal: new AbortController().signal }, () => {})).rejects.toThrow(/could not be written: disk full/);
  });

  it("records and forgets without I/O, in one transaction", async () => {
    const f = await fixture();
    f.state.synced.set("old", { id: "o", kind: "file", hash: "h", size: 1, mode: 0o644, mtimeUs: 1 });
    f.state.synced.set("gone", { id: "g", kind: "file", hash: "h", size: 1, mode: 0o644, mtimeUs: 1 });
    const outs = await f.run([
      { type: "record", path: "new", from: "old", node: { id: "o", kind: "file", hash: "h2", size: 2, mode: 0o644, mtimeUs: 2 }, why: "same_change" },
      { type: "forget", path: "gone", why: "same_change" },
    ]);
    expect(outs.map((o) => o.outcome)).toEqual(["done", "done"]);
    expect([...f.state.synced.entries()]).toEqual([["new", { id: "o", kind: "file", hash: "h2", size: 2, mode: 0o644, mtimeUs: 2 }]]);
    expect(f.state.edits).toBe(1);
  });

  it("stops on abort with what finished recorded; run again, it uploads nothing twice", async () => {
    const f = await fixture();
    const ops: SyncOp[] = [];
    for (let i = 0; i < 5; i++) {
      await writeFile(f.abs(`s${i}.txt`), `small ${i}`);
      ops.push({ type: "upload", path: `s${i}.txt`, id: `s${i}`, local: await localNode(f.abs(`s${i}.txt`)), baseRevision: 0, why: "local_new" });
    }
    await writeFile(f.abs("large.bin"), randomBytes(12 * 1024 * 1024));
    ops.push({ type: "upload", path: "large.bin", id: "l", local: await localNode(f.abs("large.bin")), baseRevision: 0, why: "local_new" });
    const ctl = new AbortController();
    const events: RunEvent[] = [];
    const first = executePlan(client, f.state, ops, { root: f.root, remote: f.name, concurrency: 1, compress: "never", signal: ctl.signal }, (e) => {
      events.push(e);
      if (e.type === "sync_op" && e.outcome === "done") ctl.abort(new Error("stopped by the test"));
    });
    await expect(first).rejects.toThrow(/stopped by the test/);
    const recorded = [...f.state.synced.keys()].sort();
    const doneEvents = events.filter((e) => e.type === "sync_op" && e.outcome === "done").map((e) => (e as { path: string }).path).sort();
    expect(recorded.length).toBeGreaterThan(0);
    expect(recorded).toEqual(doneEvents);
    for (const p of recorded) expect(Number((await remoteInfo(f.remotePath(p)))!.revision)).toBe(1);

    const again = await f.run(ops);
    expect(again.map((o) => o.outcome)).toEqual(ops.map(() => "done"));
    for (const op of ops) expect(Number((await remoteInfo(f.remotePath((op as { path: string }).path)))!.revision), (op as { path: string }).path).toBe(1);
    expect(f.state.synced.size).toBe(ops.length);
  });
});
