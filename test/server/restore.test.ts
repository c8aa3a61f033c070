import { randomBytes } from "node:crypto";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import { ChangeOp } from "../../gen/drive/v1/feed_pb.js";
import { EntryKind } from "../../gen/drive/v1/types_pb.js";
import { errorInfoOf } from "../../cli/errors.js";
import { createRequest, pushRpc } from "./rpc-push.js";
import { blake3, fileItem, folderItem, mtimeOf, putBytes, startTreeHarness, type TreeHarness } from "./tree-harness.js";
import { specOf } from "./upload-specs.js";
import { FileService } from "../../gen/drive/v1/file_pb.js";
import { kCaller } from "../../server/rpc/caller.js";
import { errorInterceptor } from "../../server/rpc/error-interceptor.js";
import { fileService } from "../../server/rpc/file-service.js";
import { bearer, connectGrpc, errorInfoOf as grpcErrorInfo, grpcError, Status, unary, type DriveGrpc, type FileInfoMsg } from "../support/grpc-client.js";

let h: TreeHarness;
beforeAll(async () => {
  h = await startTreeHarness();
}, 120_000);
afterAll(async () => h?.close());

const failure = async (call: Promise<unknown>) => {
  const err = await call.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof ConnectError)) throw new Error(`expected a ConnectError, got ${String(err)}`);
  return { code: err.code, reason: errorInfoOf(err)?.reason, message: err.rawMessage };
};

/** A small file through BeginPuts (and its PUT and CommitPuts when the content is new): its revision. */
async function putFile(path: string, data: Buffer, extra: Parameters<typeof fileItem>[2] = {}): Promise<bigint> {
  const { results } = await h.tree.beginPuts({ items: [fileItem(path, data, extra)] });
  const r = results[0]!.result;
  if (r.case === "committed") return r.value.revision;
  if (r.case !== "pending") throw new Error(`put ${path}: ${r.case} ${r.case === "error" ? r.value.message : ""}`);
  expect(await putBytes(r.value, data)).toBe(200);
  const done = (await h.tree.commitPuts({ uploadIds: [r.value.uploadId] })).results[0]!.result;
  if (done.case !== "committed") throw new Error(`commit ${path}: ${done.case}`);
  return done.value.revision;
}

const journalOf = (path: string) => h.deps.db.selectFrom("journal").select(["op", "revision"]).where("path", "=", path).orderBy("seq").execute();
const versionsOf = async (path: string) => (await h.files.listVersions({ path })).versions.map((v) => Number(v.revision));

describe("Restore", () => {
  it("brings a deleted file back as a new revision with its content, mode and mtime, as one PUT in the feed", async () => {
    const data = randomBytes(3000);
    await putFile("r/del.txt", data, { mode: 0o640, mtime: mtimeOf(1_700_000_000_000_000) });
    await h.files.delete({ path: "r/del.txt" });
    const cursor = (await h.feed.getCursor({})).cursor;
    const res = await h.files.restore({ path: "r/del.txt" });
    expect(res.restoredFrom).toBe(1n);
    expect(res.file).toMatchObject({ path: "r/del.txt", revision: 3n, deleted: false, size: 3000n, mode: 0o640, kind: EntryKind.FILE });
    expect(res.file!.mtime?.seconds).toBe(1_700_000_000n);
    expect(Buffer.from(res.file!.contentHash).equals(blake3(data))).toBe(true);
    const { changes } = await h.feed.listChanges({ cursor });
    expect(changes.map((c) => [ChangeOp[c.op], c.file?.path, Number(c.file?.revision)])).toEqual([["PUT", "r/del.txt", 3]]);
    expect(await journalOf("r/del.txt")).toEqual([
      { op: "put", revision: 1 },
      { op: "delete", revision: 2 },
      { op: "put", revision: 3 },
    ]);
    const dl = await h.files.getDownload({ path: "r/del.txt" });
    expect(Buffer.from(await (await fetch(dl.url)).arrayBuffer()).equals(data)).toBe(true);
  });

  it("brings an overwritten file's old content back with --revision, and restoring what is there commits nothing", async () => {
    const one = randomBytes(500);
    const two = randomBytes(600);
    await putFile("r/over.txt", one);
    await putFile("r/over.txt", two);
    const res = await h.files.restore({ path: "r/over.txt", revision: 1n });
    expect(res).toMatchObject({ restoredFrom: 1n, file: { revision: 3n, size: 500n } });
    // Again: the path holds that content now.
    const again = await h.files.restore({ path: "r/over.txt", revision: 1n });
    expect(again).toMatchObject({ restoredFrom: 1n, file: { revision: 3n } });
    // No revision: the newest that is not a deletion, the head itself.
    expect(await h.files.restore({ path: "r/over.txt" })).toMatchObject({ restoredFrom: 3n, file: { revision: 3n } });
    expect(await versionsOf("r/over.txt")).toEqual([3, 2, 1]);
    expect((await journalOf("r/over.txt")).map((e) => e.op)).toEqual(["put", "put", "put"]);
  });

  it("is NotFound for a path that never existed, a revision that does not, and a deletion; InvalidArgument for a negative revision", async () => {
    await putFile("r/nf.txt", randomBytes(10));
    await h.files.delete({ path: "r/nf.txt" });
    expect((await failure(h.files.restore({ path: "r/never.txt" }))).code).toBe(Code.NotFound);
    expect((await failure(h.files.restore({ path: "r/nf.txt", revision: 9n }))).code).toBe(Code.NotFound);
    expect((await failure(h.files.restore({ path: "r/nf.txt", revision: 2n }))).code).toBe(Code.NotFound);
    expect((await failure(h.files.restore({ path: "r/nf.txt", revision: -1n }))).code).toBe(Code.InvalidArgument);
    expect(await versionsOf("r/nf.txt")).toEqual([2, 1]);
  });

  it("refuses a stale base_revision with REVISION_CONFLICT, and goes ahead on the current one", async () => {
    await putFile("r/base.txt", randomBytes(10));
    await putFile("r/base.txt", randomBytes(11));
    const stale = await failure(h.files.restore({ path: "r/base.txt", revision: 1n, baseRevision: 1n }));
    expect(stale).toMatchObject({ code: Code.FailedPrecondition, reason: ErrorReason.REVISION_CONFLICT });
    expect(await h.files.restore({ path: "r/base.txt", revision: 1n, baseRevision: 2n })).toMatchObject({ file: { revision: 3n, size: 10n } });
  });

  it("is AlreadyExists when a folder of paths now lies where the file would come back, or a file above it", async () => {
    await putFile("r/clash", randomBytes(10));
    await h.files.delete({ path: "r/clash" });
    await putFile("r/clash/inside.txt", randomBytes(10));
    expect((await failure(h.files.restore({ path: "r/clash" }))).code).toBe(Code.AlreadyExists);

    await putFile("r/up/f.txt", randomBytes(10));
    await h.files.delete({ path: "r/up/f.txt" });
    await putFile("r/up", randomBytes(10));
    expect((await failure(h.files.restore({ path: "r/up/f.txt" }))).code).toBe(Code.AlreadyExists);
  });

  it("brings a folder entry back", async () => {
    await h.tree.beginPuts({ items: [folderItem("r/dir", { mode: 0o750 })] });
    await h.tree.deletePaths({ items: [{ path: "r/dir" }] });
    expect(await h.files.restore({ path: "r/dir" })).toMatchObject({ restoredFrom: 1n, file: { kind: EntryKind.FOLDER, revision: 3n, mode: 0o750 } });
  });
});

describe("ListFiles deleted", () => {
  it("lists deleted files under a prefix with the deletion's revision and the last live content, a page at a time", async () => {
    const a = randomBytes(123);
    await putFile("d/a.txt", a);
    await h.files.delete({ path: "d/a.txt" });
    await putFile("d/b.txt", randomBytes(5));
    await putFile("d/b.txt", randomBytes(7));
    await h.files.delete({ path: "d/b.txt" });
    await putFile("d/c.txt", randomBytes(9)); // live: not listed
    await putFile("d/sub/e.txt", randomBytes(1));
    await h.files.delete({ path: "d/sub/e.txt" });
    await h.tree.beginPuts({ items: [folderItem("d/gone-dir")] });
    await h.tree.deletePaths({ items: [{ path: "d/gone-dir" }] }); // a folder entry: not a file
    await putFile("dz.txt", randomBytes(1));
    await h.files.delete({ path: "dz.txt" }); // starts with "d", not with "d/"

    const first = await h.files.listFiles({ prefix: "d/", deleted: true });
    expect(first.files.map((f) => [f.path, Number(f.revision), Number(f.size), f.deleted])).toEqual([
      ["d/a.txt", 2, 123, true],
      ["d/b.txt", 3, 7, true],
      ["d/sub/e.txt", 2, 1, true],
    ]);
    expect(Buffer.from(first.files[0]!.contentHash).equals(blake3(a))).toBe(true);
    expect(first.cursor).not.toBe("");

    const pages: string[][] = [];
    let pageToken = "";
    do {
      const page = await h.files.listFiles({ prefix: "d/", deleted: true, pageSize: 1, pageToken });
      pages.push(page.files.map((f) => f.path));
      expect(page.cursor).toBe(pages.length === 1 ? page.cursor : page.cursor);
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(pages.flat()).toEqual(["d/a.txt", "d/b.txt", "d/sub/e.txt"]);
    expect((await h.files.listFiles({ prefix: "d", deleted: true })).files.map((f) => f.path)).toContain("dz.txt");
    // A restored file is live again, so no longer listed as deleted.
    await h.files.restore({ path: "d/a.txt" });
    expect((await h.files.listFiles({ prefix: "d/", deleted: true })).files.map((f) => f.path)).toEqual(["d/b.txt", "d/sub/e.txt"]);
  });
});

describe("identical content is not a conflict", () => {
  it("BeginPuts on a stale base with the content the path holds succeeds with the current state and writes nothing", async () => {
    const data = randomBytes(2000);
    await putFile("i/same.txt", data);
    await putFile("i/same.txt", randomBytes(10));
    await putFile("i/same.txt", data); // revision 3 holds `data` again
    const { results } = await h.tree.beginPuts({ items: [fileItem("i/same.txt", data, { baseRevision: 1n, mode: 0o600 }), fileItem("i/same.txt".replace("same", "other"), data, { baseRevision: 0n })] });
    expect(results[0]!.result).toMatchObject({ case: "committed", value: { revision: 3n } });
    expect(await versionsOf("i/same.txt")).toEqual([3, 2, 1]);
    expect((await journalOf("i/same.txt")).length).toBe(3);

    // Base 0 ("I create it") where the other side created the same bytes: no conflict.
    const fresh = randomBytes(100);
    await putFile("i/both.txt", fresh);
    const both = await h.tree.beginPuts({ items: [fileItem("i/both.txt", fresh, { baseRevision: 0n })] });
    expect(both.results[0]!.result).toMatchObject({ case: "committed", value: { revision: 1n } });
    // Other content on a stale base still conflicts.
    const other = await h.tree.beginPuts({ items: [fileItem("i/both.txt", randomBytes(100), { baseRevision: 0n })] });
    expect(other.results[0]!.result).toMatchObject({ case: "error", value: { code: Code.FailedPrecondition } });
    // A folder entry where a folder entry is.
    await h.tree.beginPuts({ items: [folderItem("i/dir")] });
    const dir = await h.tree.beginPuts({ items: [folderItem("i/dir", { baseRevision: 0n })] });
    expect(dir.results[0]!.result).toMatchObject({ case: "committed", value: { revision: 1n } });
  });

  it("a pending put whose base went stale, by a write of the same bytes, commits nothing in CommitPuts", async () => {
    const data = randomBytes(4000);
    const begun = await h.tree.beginPuts({ items: [fileItem("i/race.txt", data, { baseRevision: 0n })] });
    const pending = begun.results[0]!.result;
    if (pending.case !== "pending") throw new Error(pending.case);
    expect(await putBytes(pending.value, data)).toBe(200);
    // Someone else lands the same bytes first: stored through another path, then put here at once.
    await pushRpc(h, "i/race-src.txt", data);
    expect(await putFile("i/race.txt", data)).toBe(1n);
    const done = (await h.tree.commitPuts({ uploadIds: [pending.value.uploadId] })).results[0]!.result;
    expect(done).toMatchObject({ case: "committed", value: { revision: 1n } });
    expect(await versionsOf("i/race.txt")).toEqual([1]);
  });

  it("deletes keep the strict rule", async () => {
    await putFile("i/strict.txt", randomBytes(10));
    await putFile("i/strict.txt", randomBytes(10));
    expect(await failure(h.files.delete({ path: "i/strict.txt", baseRevision: 1n }))).toMatchObject({ code: Code.FailedPrecondition, reason: ErrorReason.REVISION_CONFLICT });
  });

  it("CreateUpload with stored content, and CompleteUpload whose base went stale by the same content, succeed writing nothing", async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    await pushRpc(h, "i/big.bin", data);
    await putFile("i/big.bin", randomBytes(10));
    await pushRpc(h, "i/big.bin", data); // revision 3 holds `data` again
    const spec = specOf("i/big.bin", data);
    const created = await h.uploads.createUpload(createRequest(spec, { baseRevision: 1n }));
    expect(created.committed).toMatchObject({ revision: 3n });
    expect(await versionsOf("i/big.bin")).toEqual([3, 2, 1]);

    // An upload opened on base 0; meanwhile the same bytes are stored through another path, then put here.
    const fresh = randomBytes(2 * 1024 * 1024 + 5);
    const open = await h.uploads.createUpload(createRequest(specOf("i/late.bin", fresh), { baseRevision: 0n, presignWindow: 1000 }));
    expect(open.committed).toBeUndefined();
    await pushRpc(h, "i/late-src.bin", fresh);
    expect((await h.uploads.createUpload(createRequest(specOf("i/late.bin", fresh)))).committed).toMatchObject({ revision: 1n });
    const { file } = await h.uploads.completeUpload({ uploadId: open.uploadId });
    expect(file).toMatchObject({ path: "i/late.bin", revision: 1n });
    expect(await versionsOf("i/late.bin")).toEqual([1]);
    // Idempotent: the upload is completed at that revision.
    expect((await h.uploads.completeUpload({ uploadId: open.uploadId })).file).toMatchObject({ revision: 1n });
  });
});

describe("Restore and the deleted listing through a stock gRPC client", () => {
  // FileService on h2c over the harness's database and caller: grpc-js, with the .proto files alone, on a real socket.
  let server: http2.Http2Server;
  let grpc: DriveGrpc;
  beforeAll(async () => {
    const asCaller: Interceptor = (next) => (req) => {
      req.contextValues.set(kCaller, h.caller);
      return next(req);
    };
    const handler = connectNodeAdapter({
      routes: (router) => router.service(FileService, fileService(h.deps)),
      interceptors: [errorInterceptor(h.deps.log), asCaller],
    });
    server = http2.createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    grpc = connectGrpc(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });
  afterAll(async () => {
    grpc?.close();
    await new Promise((resolve) => server?.close(resolve));
  });
  const call = <Res = Record<string, any>>(method: string, request: Record<string, unknown>) => unary<Res>(grpc.files, method, request, bearer());

  it("lists a deleted file, restores it, and answers NotFound and REVISION_CONFLICT as gRPC statuses with ErrorInfo", async () => {
    const data = randomBytes(700);
    await putFile("g/a.txt", data, { mode: 0o600 });
    await h.files.delete({ path: "g/a.txt" });

    const listed = await call<{ files: Array<FileInfoMsg & { kind: string; mode: number }>; nextPageToken: string; cursor: string }>("ListFiles", { prefix: "g/", deleted: true });
    expect(listed.files).toEqual([
      expect.objectContaining({ path: "g/a.txt", revision: 2, deleted: true, size: 700, contentHashKind: "CONTENT_HASH_KIND_BLAKE3", kind: "ENTRY_KIND_FILE", mode: 0o600 }),
    ]);
    expect(listed.files[0]!.contentHash.equals(blake3(data))).toBe(true);
    expect(listed.nextPageToken).toBe("");
    expect(listed.cursor).not.toBe("");

    const restored = await call<{ file: FileInfoMsg; restoredFrom: number }>("Restore", { path: "g/a.txt" });
    expect(restored).toMatchObject({ restoredFrom: 1, file: { path: "g/a.txt", revision: 3, deleted: false, size: 700 } });
    expect((await call<{ files: FileInfoMsg[] }>("ListFiles", { prefix: "g/", deleted: true })).files).toEqual([]);
    expect((await call<{ files: FileInfoMsg[] }>("ListFiles", { prefix: "g/" })).files.map((f) => [f.path, f.revision])).toEqual([["g/a.txt", 3]]);

    const deletion = await grpcError(call("Restore", { path: "g/a.txt", revision: 2 }));
    expect(deletion.code).toBe(Status.NOT_FOUND);
    expect((await grpcError(call("Restore", { path: "g/never.txt" }))).code).toBe(Status.NOT_FOUND);
    const stale = await grpcError(call("Restore", { path: "g/a.txt", revision: 1, baseRevision: 2 }));
    expect(stale.code).toBe(Status.FAILED_PRECONDITION);
    expect(grpcErrorInfo(stale)).toMatchObject({ reason: "ERROR_REASON_REVISION_CONFLICT", revisionConflict: { currentRevision: 3, baseRevision: 2, currentDeleted: false } });
    expect((await grpcError(call("Restore", { path: "/g/a.txt" }))).code).toBe(Status.INVALID_ARGUMENT);
    expect(await versionsOf("g/a.txt")).toEqual([3, 2, 1]);
  });
});
