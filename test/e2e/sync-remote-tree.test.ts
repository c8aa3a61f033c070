import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ChangeOp, ChangeSchema, type Change } from "../../gen/drive/v1/feed_pb.js";
import { ContentHashKind, EntryKind, FileInfoSchema, type FileInfo } from "../../gen/drive/v1/types_pb.js";
import type { DriveClient } from "../../cli/rpc/drive-client.js";
import { FeedSteps } from "../../cli/sync/feed-steps.js";
import { refreshRemote } from "../../cli/sync/remote-tree.js";
import { openSyncState } from "../../cli/sync/state-store.js";
import type { SyncState } from "../../cli/sync/types.js";
import { microsOfNs } from "../../cli/tree/tree-attrs.js";
import { encodeCursor } from "../../server/journal/cursor.js";
import { runDrive } from "../support/drive-cli.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import { blake3, client } from "./watch-support.js";

/**
 * refreshRemote against a real server: the remote folder "w" is changed by
 * push and Move, and Remote follows from the feed. One server and one state
 * for the whole file, each test building on the last.
 */
describe("refreshRemote", () => {
  let server: TestServer;
  let dir: string;
  let a: string;
  let rpc: DriveClient;
  let state: SyncState;
  const signal = AbortSignal.timeout(300_000);
  const drive = async (...args: string[]) => {
    const r = await runDrive(["--json", ...args], { server: server.url, token: server.adminToken, cwd: dir });
    expect(r.code, r.stderr + r.stdout).toBe(0);
  };
  const refresh = () => refreshRemote(rpc, state, "w", signal);
  const keys = () => [...state.remote.keys()].sort();
  const id = (p: string) => state.remote.get(p)?.id;
  const write = async (rel: string, content: string) => {
    await mkdir(join(a, rel, ".."), { recursive: true });
    await writeFile(join(a, rel), content);
  };

  beforeAll(async () => {
    server = await startDriveServer();
    dir = await mkdtemp(join(tmpdir(), "sync-remote-"));
    a = join(dir, "a");
    await write("one.txt", "one");
    await write("docs/two.txt", "two");
    await write("docs/deep/three.txt", "three");
    await mkdir(join(a, "empty"));
    await drive("push", a, "w");
    await writeFile(join(dir, "x"), "x");
    await drive("push", join(dir, "x"), "w2/x.txt");
    await drive("push", join(dir, "x"), "other/y.txt");
    rpc = client(server.url, server.adminToken);
    state = await openSyncState({ server: server.url, remoteRoot: "w", localRoot: a }, join(dir, "state"));
  });
  afterAll(async () => {
    await state?.close();
    rpc?.close();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("lists the folder with no cursor: files, folder entries and implied folders", async () => {
    // What sync recorded at a path gives its id to the remote node there.
    await state.editSynced([{ type: "set", path: "one.txt", node: { id: "s-one", kind: "file", hash: "", size: 0, mode: 0, mtimeUs: 0 } }]);
    expect(await refresh()).toEqual({ changed: true, reset: false });
    expect(keys()).toEqual(["docs", "docs/deep", "docs/deep/three.txt", "docs/two.txt", "empty", "one.txt"]);
    const st = await stat(join(a, "one.txt"), { bigint: true });
    expect(state.remote.get("one.txt")).toEqual({ id: "s-one", kind: "file", hash: blake3("one").toString("hex"), size: 3, mode: 0o644, mtimeUs: Number(microsOfNs(st.mtimeNs)), revision: 1 });
    expect(state.remote.get("docs")).toMatchObject({ kind: "folder", revision: 0, hash: "", size: 0 });
    expect(state.remote.get("empty")!.revision).toBeGreaterThan(0);
    expect(new Set([...state.remote.values()].map((n) => n.id)).size).toBe(6);
    expect(state.cursor).not.toBe("");
    expect(await refresh()).toEqual({ changed: false, reset: false });
  });

  it("follows puts: an edit keeps the id, a new path takes Synced's", async () => {
    const before = state.cursor;
    await state.editSynced([{ type: "set", path: "new/n.txt", node: { id: "s-n", kind: "file", hash: "", size: 0, mode: 0, mtimeUs: 0 } }]);
    await write("one.txt", "one, edited");
    await write("new/n.txt", "n");
    await drive("push", a, "w");
    expect(await refresh()).toEqual({ changed: true, reset: false });
    expect(state.cursor).not.toBe(before);
    expect(state.remote.get("one.txt")).toMatchObject({ id: "s-one", revision: 2, hash: blake3("one, edited").toString("hex"), size: 11 });
    expect(id("new/n.txt")).toBe("s-n");
    expect(state.remote.get("new")).toMatchObject({ kind: "folder", revision: 0 });
  });

  it("follows attribute changes", async () => {
    await chmod(join(a, "one.txt"), 0o755);
    await drive("push", a, "w");
    const rev = state.remote.get("one.txt")!.revision;
    expect(await refresh()).toEqual({ changed: true, reset: false });
    expect(state.remote.get("one.txt")).toMatchObject({ id: "s-one", mode: 0o755, hash: blake3("one, edited").toString("hex") });
    expect(state.remote.get("one.txt")!.revision).toBeGreaterThan(rev);
  });

  it("follows deletes: an implied folder goes with the last path under it, a folder entry with its delete", async () => {
    const docs = id("docs");
    await rm(join(a, "docs/deep"), { recursive: true });
    await rm(join(a, "empty"), { recursive: true });
    await drive("push", "--delete", a, "w");
    await refresh();
    expect(keys()).toEqual(["docs", "docs/two.txt", "new", "new/n.txt", "one.txt"]);
    expect(id("docs")).toBe(docs);
  });

  it("follows a file's move with its id", async () => {
    await rpc.tree.move({ fromPath: "w/one.txt", toPath: "w/uno.txt" });
    await refresh();
    expect(id("uno.txt")).toBe("s-one");
    expect(state.remote.has("one.txt")).toBe(false);
    expect(state.remote.get("uno.txt")!.revision).toBe(1); // a path's first revision
  });

  it("follows a folder's move, each path keeping its id, an entry's folder too", async () => {
    const two = id("docs/two.txt");
    const docs = id("docs");
    await rpc.tree.move({ fromPath: "w/docs", toPath: "w/papers" });
    // A folder with an entry of its own and a file in it.
    await mkdir(join(dir, "box/box"), { recursive: true });
    await drive("push", join(dir, "box"), "w");
    await writeFile(join(dir, "in"), "in");
    await drive("push", join(dir, "in"), "w/box/in.txt");
    await refresh();
    const box = id("box");
    const inside = id("box/in.txt");
    expect(state.remote.get("box")!.revision).toBeGreaterThan(0);
    await rpc.tree.move({ fromPath: "w/box", toPath: "w/crate/inner" });
    await refresh();
    expect(keys()).toEqual(["crate", "crate/inner", "crate/inner/in.txt", "new", "new/n.txt", "papers", "papers/two.txt", "uno.txt"]);
    expect(id("papers/two.txt")).toBe(two);
    expect(id("papers")).toBe(docs); // a folder with no entry, renamed
    expect(id("crate/inner")).toBe(box);
    expect(id("crate/inner/in.txt")).toBe(inside);
    expect(state.remote.get("crate")!.revision).toBe(0);
    expect(new Set([...state.remote.values()].map((n) => n.id)).size).toBe(8);
  });

  it("takes a move in from outside as a put, one out as a delete, and ignores the rest", async () => {
    await rpc.tree.move({ fromPath: "w2/x.txt", toPath: "w/x.txt" });
    await rpc.tree.move({ fromPath: "w/uno.txt", toPath: "other/uno.txt" });
    await refresh();
    expect(state.remote.has("uno.txt")).toBe(false);
    expect(state.remote.get("x.txt")).toMatchObject({ kind: "file", hash: blake3("x").toString("hex") });
    expect(id("x.txt")).not.toBe("s-one");
    await drive("push", join(dir, "x"), "other/z.txt");
    await drive("push", join(dir, "x"), "w2/z.txt");
    const cursor = state.cursor;
    expect(await refresh()).toEqual({ changed: false, reset: false });
    expect(state.cursor).not.toBe(cursor); // past the changes it skipped
  });

  it("lists afresh on CURSOR_RESET, keeping the ids of paths it already had", async () => {
    const before = new Map(state.remote);
    // A cursor past the end of the feed is one the server cannot replay.
    const bytes = [...Buffer.from(state.cursor, "base64url")];
    const r = { at: 1 };
    const userId = readVarint(bytes, r);
    readVarint(bytes, r);
    const ns = readVarint(bytes, r);
    const seq = readVarint(bytes, r);
    await state.editRemote([], encodeCursor({ userId, seqs: new Map([[ns, seq + 1000]]) }));
    await drive("push", join(dir, "x"), "w/late.txt");
    expect(await refresh()).toEqual({ changed: true, reset: true });
    const late = state.remote.get("late.txt")!;
    expect(late).toMatchObject({ kind: "file", revision: 1 });
    expect(new Map([...state.remote].filter(([p]) => p !== "late.txt"))).toEqual(before);
    expect(await refresh()).toEqual({ changed: false, reset: false });
  });
});

function readVarint(bytes: number[], r: { at: number }): number {
  let n = 0;
  for (let shift = 0; ; shift += 7) {
    const b = bytes[r.at++]!;
    n += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return n;
  }
}

/**
 * The feed's rules on changes made up here, for what a server rarely or
 * never sends in one test: a folder's move split across pages, a folder
 * entry deleted with paths under it, paths no valid tree holds.
 */
describe("feed changes as steps", () => {
  let dir: string;
  let state: SyncState;
  let feed: FeedSteps;
  let seq = 0;
  const file = (path: string, revision = 1) => create(FileInfoSchema, { path, revision: BigInt(revision), size: 1n, contentHash: blake3(path), contentHashKind: ContentHashKind.BLAKE3, kind: EntryKind.FILE, mode: 0o644 });
  const folder = (path: string, revision = 1) => create(FileInfoSchema, { path, revision: BigInt(revision), kind: EntryKind.FOLDER });
  const put = (info: FileInfo) => create(ChangeSchema, { op: ChangeOp.PUT, file: info });
  const del = (info: FileInfo) => create(ChangeSchema, { op: ChangeOp.DELETE, file: { ...info, deleted: true } });
  const move = (fromPath: string, info: FileInfo) => create(ChangeSchema, { op: ChangeOp.MOVE, file: info, fromPath });
  /** One page of the feed, applied and written. */
  const page = (...changes: Change[]) => feed.page(changes, `c${++seq}`);
  const ids = () => Object.fromEntries([...state.remote].map(([p, n]) => [p, n.id]));
  const unique = () => expect(new Set(Object.values(ids())).size).toBe(state.remote.size);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sync-feed-"));
  });
  beforeEach(async () => {
    state = await openSyncState({ server: "s", remoteRoot: "w", localRoot: `/r${++seq}` }, dir);
    feed = new FeedSteps(state, "w");
  });
  afterEach(async () => {
    await state.close();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("a folder entry's move split across pages: ids follow each path, none twice", async () => {
    await page(put(folder("w/a")), put(file("w/a/x")), put(file("w/a/y")));
    const before = ids();
    expect(before).toMatchObject({ a: expect.any(String), "a/x": expect.any(String) });
    await page(move("w/a", folder("w/b", 1)), move("w/a/x", file("w/b/x")));
    unique();
    expect(state.remote.get("a")).toMatchObject({ kind: "folder", revision: 0 }); // a/y still there
    expect(ids().b).toBe(before.a);
    await page(move("w/a/y", file("w/b/y")));
    expect(ids()).toEqual({ b: before.a, "b/x": before["a/x"], "b/y": before["a/y"] });
  });

  it("a folder with no entry renamed: once the feed is read, the new folders take the old ones' ids", async () => {
    await page(put(file("w/docs/a")), put(file("w/docs/sub/b")), put(file("w/keep/c")));
    const before = ids();
    await page(move("w/docs/a", file("w/papers/a")));
    await page(move("w/docs/sub/b", file("w/papers/sub/b")));
    // Moves from two folders into one: no rename to guess.
    await page(move("w/keep/c", file("w/mixed/c")), put(file("w/other/d")));
    await page(move("w/other/d", file("w/mixed/d")));
    expect(await feed.finish()).toBe(true);
    expect(ids()).toMatchObject({ papers: before.docs, "papers/sub": before["docs/sub"], "papers/a": before["docs/a"], "papers/sub/b": before["docs/sub/b"] });
    expect(ids().mixed).not.toBe(before.keep);
    expect(state.remote.has("docs")).toBe(false);
    unique();
    expect(await feed.finish()).toBe(false);
  });

  it("the echo of sync's own move of such a folder keeps Synced's id", async () => {
    await page(put(file("w/d/x")), put(file("w/d/y")));
    const d = ids().d!;
    // Sync moved d to e on the server and recorded it: Synced has e with d's id.
    await state.editSynced([{ type: "set", path: "e", node: { id: d, kind: "folder", hash: "", size: 0, mode: 0, mtimeUs: 0 } }]);
    await page(move("w/d/x", file("w/e/x")), move("w/d/y", file("w/e/y")));
    await feed.finish();
    expect(ids().e).toBe(d);
    expect(state.remote.has("d")).toBe(false);
  });

  it("a folder entry deleted with paths under it stays as an implied folder until they go", async () => {
    await page(put(folder("w/d")), put(file("w/d/e/f")));
    const d = ids().d;
    await page(del(folder("w/d", 2)));
    expect(state.remote.get("d")).toMatchObject({ id: d, revision: 0 });
    await page(del(file("w/d/e/f", 2)));
    expect(state.remote.size).toBe(0);
  });

  it("skips paths no valid tree holds, and the remote folder itself", async () => {
    await page(put(file("w/a/../b")), put(file("w/x//y")), put(file("w/\u0001")), put(file("w/e\u0301")), put(folder("w")), put(file("w2/z")), put(file("w/ok")));
    expect([...state.remote.keys()]).toEqual(["ok"]);
  });

  it("gives a path new to Remote Synced's id only when no node holds it", async () => {
    await state.editSynced([
      { type: "set", path: "p", node: { id: "s-p", kind: "file", hash: "", size: 0, mode: 0, mtimeUs: 0 } },
      { type: "set", path: "q", node: { id: "s-q", kind: "folder", hash: "", size: 0, mode: 0, mtimeUs: 0 } },
    ]);
    await page(put(file("w/p")), put(file("w/q")));
    expect(ids()).toMatchObject({ p: "s-p" });
    expect(ids().q).not.toBe("s-q"); // another kind
    await page(move("w/p", file("w/moved")), put(file("w/p")));
    expect(ids().moved).toBe("s-p");
    expect(ids().p).not.toBe("s-p");
    unique();
    // A file replaced by a folder is another node.
    const q = ids().q;
    await page(del(file("w/q", 2)), put(folder("w/q", 3)));
    expect(state.remote.get("q")).toMatchObject({ kind: "folder", id: "s-q" });
    expect(ids().q).not.toBe(q);
  });
});
