import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import { ContentHashKind, EntryKind } from "../../gen/drive/v1/types_pb.js";
import type { PutResult } from "../../gen/drive/v1/tree_pb.js";
import { sweepUploads } from "../../server/uploads/upload-sweeper.js";
import { BlobError } from "../../server/blob/errors.js";
import { createRequest } from "./rpc-push.js";
import { specOf } from "./upload-specs.js";
import { fileItem, folderItem, mtimeOf, putBytes, startTreeHarness, type TreeHarness } from "./tree-harness.js";

let h: TreeHarness;
beforeAll(async () => {
  h = await startTreeHarness();
}, 120_000);
afterAll(async () => h?.close());

const pending = (r: PutResult) => {
  if (r.result.case !== "pending") throw new Error(`expected pending, got ${r.result.case}: ${r.result.case === "error" ? r.result.value.message : ""}`);
  return r.result.value;
};
const committed = (r: PutResult) => {
  if (r.result.case !== "committed") throw new Error(`expected committed, got ${r.result.case}: ${r.result.case === "error" ? r.result.value.message : ""}`);
  return r.result.value;
};
const failure = (r: PutResult) => {
  if (r.result.case !== "error") throw new Error(`expected an error, got ${r.result.case}`);
  return r.result.value;
};
const journal = (path: string) =>
  h.deps.db.selectFrom("journal").selectAll().where("namespace_id", "=", h.caller.namespaceId).where("path", "=", path).orderBy("seq").execute();

async function expectCode(p: Promise<unknown>, code: Code): Promise<ConnectError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  expect((err as ConnectError).code, (err as Error).message).toBe(code);
  return err as ConnectError;
}

describe("TreeService puts", () => {
  it("puts files, a folder entry and an empty file, with mode and mtime, and serves them back", async () => {
    const a = randomBytes(4096);
    const b = randomBytes(1000);
    const mtime = 1_700_000_000_123_456;
    const begun = await h.tree.beginPuts({
      items: [
        fileItem("t1/a.sh", a, { mode: 0o755, mtime: mtimeOf(mtime) }),
        fileItem("t1/b", b),
        folderItem("t1/empty", { mode: 0o700 }),
        fileItem("t1/zero", Buffer.alloc(0)),
      ],
    });
    const [pa, pb] = [pending(begun.results[0]!), pending(begun.results[1]!)];
    expect(committed(begun.results[2]!)).toMatchObject({ path: "t1/empty", kind: EntryKind.FOLDER, mode: 0o700, revision: 1n, size: 0n });
    expect(committed(begun.results[3]!)).toMatchObject({ path: "t1/zero", kind: EntryKind.FILE, size: 0n });
    expect(await putBytes(pa, a)).toBe(200);
    expect(await putBytes(pb, b)).toBe(200);

    const done = await h.tree.commitPuts({ uploadIds: [pa.uploadId, pb.uploadId] });
    const fa = committed(done.results[0]!);
    expect(fa).toMatchObject({ path: "t1/a.sh", size: 4096n, mode: 0o755, kind: EntryKind.FILE, revision: 1n, contentHashKind: ContentHashKind.BLAKE3 });
    expect(Number(fa.mtime!.seconds) * 1e6 + fa.mtime!.nanos / 1000).toBe(mtime);
    expect(committed(done.results[1]!).mode).toBe(0);

    const stat = await h.files.stat({ path: "t1/a.sh" });
    expect(stat.file).toMatchObject({ mode: 0o755, kind: EntryKind.FILE });
    const versions = await h.files.listVersions({ path: "t1/a.sh" });
    expect(versions.versions[0]).toMatchObject({ mode: 0o755, kind: EntryKind.FILE, revision: 1n });
    const listed = await h.files.listFiles({ prefix: "t1/" });
    expect(listed.files.map((f) => [f.path, f.kind])).toEqual([
      ["t1/a.sh", EntryKind.FILE],
      ["t1/b", EntryKind.FILE],
      ["t1/empty", EntryKind.FOLDER],
      ["t1/zero", EntryKind.FILE],
    ]);

    const downloads = await h.tree.getDownloads({ paths: ["t1/a.sh", "t1/b", "t1/empty", "t1/none", "t1/zero"] });
    const [da, db, dfolder, dnone, dzero] = downloads.results;
    if (da!.result.case !== "download" || db!.result.case !== "download" || dzero!.result.case !== "download") throw new Error("expected downloads");
    const got = Buffer.from(await (await fetch(da!.result.value.url)).arrayBuffer());
    expect(got.equals(a)).toBe(true);
    expect(da!.result.value.chunks.map((c) => c.size)).toEqual([4096n]);
    expect(da!.result.value.file).toMatchObject({ mode: 0o755 });
    expect(Buffer.from(await (await fetch(db!.result.value.url)).arrayBuffer()).equals(b)).toBe(true);
    expect(dzero!.result.value.url).toBe("");
    expect(dfolder!.result.case === "error" && dfolder!.result.value.code).toBe(Code.InvalidArgument);
    expect(dnone!.result.case === "error" && dnone!.result.value.code).toBe(Code.NotFound);

    // The same answer as GetDownload, which shares its code.
    const single = await h.files.getDownload({ path: "t1/a.sh" });
    expect(single.chunks).toEqual(da!.result.value.chunks);
    expect(single.file).toEqual(da!.result.value.file);

    expect((await journal("t1/a.sh")).map((j) => [j.op, j.mode, j.mtime_us, j.kind])).toEqual([["put", 0o755, mtime, "file"]]);
    expect((await journal("t1/empty")).map((j) => [j.op, j.kind, j.size])).toEqual([["put", "folder", 0]]);
  });

  it("commits nothing for what the path already holds, and an attrs-only revision for a new mode or mtime", async () => {
    const data = randomBytes(2000);
    const first = await h.tree.beginPuts({ items: [fileItem("t2/f", data, { mode: 0o644, mtime: mtimeOf(1_000_000) })] });
    const p = pending(first.results[0]!);
    await putBytes(p, data);
    await h.tree.commitPuts({ uploadIds: [p.uploadId] });

    const again = await h.tree.beginPuts({ items: [fileItem("t2/f", data, { mode: 0o644, mtime: mtimeOf(1_000_000) }), fileItem("t2/same-content", data)] });
    expect(committed(again.results[0]!).revision).toBe(1n);
    // Content the namespace stores commits at once at another path, with no PUT.
    expect(committed(again.results[1]!).revision).toBe(1n);

    const chmod = await h.tree.beginPuts({ items: [fileItem("t2/f", data, { mode: 0o755, mtime: mtimeOf(1_000_000) })] });
    expect(committed(chmod.results[0]!)).toMatchObject({ revision: 2n, mode: 0o755 });
    const touch = await h.tree.beginPuts({ items: [fileItem("t2/f", data, { mtime: mtimeOf(2_000_000) })] });
    // Mode not said: it stays as it was.
    expect(committed(touch.results[0]!)).toMatchObject({ revision: 3n, mode: 0o755 });
    expect((await journal("t2/f")).map((j) => [j.op, j.revision, j.mode, j.mtime_us])).toEqual([
      ["put", 1, 0o644, 1_000_000],
      ["attrs", 2, 0o755, 1_000_000],
      ["attrs", 3, 0o755, 2_000_000],
    ]);

    // CreateUpload does the same for content that is stored.
    const spec = specOf("t2/f", data, 1 << 20);
    const created = await h.uploads.createUpload(createRequest(spec, { mode: 0o600, mtime: mtimeOf(2_000_000) }));
    expect(created.committed).toMatchObject({ revision: 4n, mode: 0o600 });
    const unchanged = await h.uploads.createUpload(createRequest(spec, { mode: 0o600, mtime: mtimeOf(2_000_000) }));
    expect(unchanged.committed?.revision).toBe(4n);
    expect((await journal("t2/f")).at(-1)!.op).toBe("attrs");
    await expectCode(h.uploads.createUpload(createRequest(spec, { mode: 0o10000 })), Code.InvalidArgument);
    await expectCode(h.uploads.createUpload(createRequest(spec, { mtime: { seconds: -1n, nanos: 0 } })), Code.InvalidArgument);
    await expectCode(h.uploads.createUpload(createRequest(spec, { mtime: { seconds: 253402300800n, nanos: 0 } })), Code.InvalidArgument);
  });

  it("makes one blob of two paths with the same new content in one batch", async () => {
    const data = randomBytes(3000);
    const begun = await h.tree.beginPuts({ items: [fileItem("t3/one", data), fileItem("t3/two", data)] });
    const [p1, p2] = begun.results.map(pending);
    await putBytes(p1!, data);
    await putBytes(p2!, data);
    const done = await h.tree.commitPuts({ uploadIds: [p1!.uploadId, p2!.uploadId] });
    const blobIds = await h.deps.db
      .selectFrom("files")
      .select("blob_id")
      .where("path", "in", ["t3/one", "t3/two"])
      .execute();
    expect(new Set(blobIds.map((b) => b.blob_id)).size).toBe(1);
    expect(done.results.map((r) => committed(r).revision)).toEqual([1n, 1n]);
    const keys = await h.deps.db.selectFrom("uploads").select("object_key").where("id", "in", [p1!.uploadId, p2!.uploadId]).execute();
    const blob = await h.deps.db.selectFrom("blobs").select("object_key").where("id", "=", blobIds[0]!.blob_id!).executeTakeFirstOrThrow();
    // The object no blob names is gone from the store.
    for (const { object_key } of keys) {
      if (object_key === blob.object_key) expect((await h.deps.store.stat(object_key)).size).toBe(3000);
      else await expect(h.deps.store.stat(object_key)).rejects.toBeInstanceOf(BlobError);
    }
  });

  it("answers retries the same: BeginPuts reuses the open put, CommitPuts returns the committed revision", async () => {
    const data = randomBytes(500);
    const p = pending((await h.tree.beginPuts({ items: [fileItem("t4/f", data)] })).results[0]!);
    const p2 = pending((await h.tree.beginPuts({ items: [fileItem("t4/f", data)] })).results[0]!);
    expect(p2.uploadId).toBe(p.uploadId);
    await putBytes(p2, data);
    const first = committed((await h.tree.commitPuts({ uploadIds: [p.uploadId] })).results[0]!);
    const second = committed((await h.tree.commitPuts({ uploadIds: [p.uploadId] })).results[0]!);
    expect(second).toEqual(first);
    expect(await journal("t4/f")).toHaveLength(1);
    // Two calls racing over the same ids commit once.
    const other = randomBytes(500);
    const q = pending((await h.tree.beginPuts({ items: [fileItem("t4/g", other)] })).results[0]!);
    await putBytes(q, other);
    const raced = await Promise.all([h.tree.commitPuts({ uploadIds: [q.uploadId] }), h.tree.commitPuts({ uploadIds: [q.uploadId] })]);
    expect(raced.map((r) => committed(r.results[0]!).revision)).toEqual([1n, 1n]);
    expect(await journal("t4/g")).toHaveLength(1);
  });

  it("fails single items for a lying client, and commits the rest", async () => {
    const good = randomBytes(100);
    const liar = randomBytes(100);
    const begun = await h.tree.beginPuts({
      items: [
        fileItem("t5/good", good),
        fileItem("t5/short", liar),
        fileItem("t5/missing", randomBytes(100)),
        fileItem("t5/../x", good),
        fileItem("t5/nul\u0000", good),
        fileItem("t5/cafe\u0301", good),
        fileItem("t5/kind", good, { contentHashKind: ContentHashKind.CHUNK_LIST }),
        fileItem("t5/nokind", good, { kind: EntryKind.UNSPECIFIED }),
        fileItem("t5/big", good, { size: 9n * 1024n * 1024n }),
        fileItem("t5/sum", good, { size: 99n }),
        fileItem("t5/mode", good, { mode: 0o17777 }),
        folderItem("t5/folder-with-size", { size: 3n }),
      ],
    });
    const [pgood, pshort, pmissing] = begun.results.slice(0, 3).map(pending);
    for (const r of begun.results.slice(3)) expect(failure(r).code).toBe(Code.InvalidArgument);
    expect(await putBytes(pgood!, good)).toBe(200);
    // The local store signs the length: a wrong one is refused at the PUT.
    expect(await putBytes(pshort!, liar.subarray(0, 50))).toBe(400);
    // A store that does not (S3) takes it; the commit's stat refuses it. Made here as such a store would.
    const row = await h.deps.db.selectFrom("uploads").select("object_key").where("id", "=", pshort!.uploadId).executeTakeFirstOrThrow();
    const wrong = await h.deps.store.presignPut({ key: row.object_key, size: 50, expiresInSeconds: 60, origin: new URL(pshort!.url).origin });
    expect((await fetch(wrong.url, { method: "PUT", body: liar.subarray(0, 50) })).status).toBe(200);

    const done = await h.tree.commitPuts({ uploadIds: [pgood!.uploadId, pshort!.uploadId, pmissing!.uploadId] });
    expect(committed(done.results[0]!).path).toBe("t5/good");
    const short = failure(done.results[1]!);
    expect([short.code, short.info?.reason]).toEqual([Code.FailedPrecondition, ErrorReason.PARTS_UNCONFIRMED]);
    const missing = failure(done.results[2]!);
    expect([missing.code, missing.info?.reason]).toEqual([Code.FailedPrecondition, ErrorReason.PARTS_MISSING]);

    // Both stay pending: PUT the right bytes, commit again.
    const fresh = await h.tree.beginPuts({ items: [fileItem("t5/short", liar)] });
    expect(pending(fresh.results[0]!).uploadId).toBe(pshort!.uploadId);
    expect(await putBytes(pending(fresh.results[0]!), liar)).toBe(200);
    expect(committed((await h.tree.commitPuts({ uploadIds: [pshort!.uploadId] })).results[0]!).size).toBe(100n);

    const unknown = await h.tree.commitPuts({ uploadIds: ["0123456789abcdef0123456789abcdef"] });
    expect(failure(unknown.results[0]!).info?.reason).toBe(ErrorReason.UPLOAD_NOT_FOUND);
  });

  it("fails a stale base revision alone, with its REVISION_CONFLICT detail, at begin and at commit", async () => {
    const data = randomBytes(200);
    const begun = await h.tree.beginPuts({ items: [folderItem("t6/d"), folderItem("t6/e", { baseRevision: 5n }), fileItem("t6/f", data, { baseRevision: 0n })] });
    committed(begun.results[0]!);
    const stale = failure(begun.results[1]!);
    expect([stale.code, stale.info?.reason]).toEqual([Code.FailedPrecondition, ErrorReason.REVISION_CONFLICT]);
    expect(stale.info?.detail.case === "revisionConflict" && stale.info.detail.value.baseRevision).toBe(5n);
    const p = pending(begun.results[2]!);
    await putBytes(p, data);
    // Someone else takes the path before the commit.
    await h.tree.beginPuts({ items: [folderItem("t6/f")] });
    const done = await h.tree.commitPuts({ uploadIds: [p.uploadId] });
    expect(failure(done.results[0]!).info?.reason).toBe(ErrorReason.REVISION_CONFLICT);
    expect((await h.files.stat({ path: "t6/f" })).file?.kind).toBe(EntryKind.FOLDER);
  });

  it("refuses a request over a cap before any work", async () => {
    const item = fileItem("t7/x", randomBytes(10));
    const chunk = { size: 10n, hash: Buffer.alloc(32) };
    await expectCode(h.tree.beginPuts({ items: [] }), Code.InvalidArgument);
    await expectCode(h.tree.beginPuts({ items: Array.from({ length: 1001 }, (_, i) => ({ ...item, path: `t7/${i}` })) }), Code.InvalidArgument);
    await expectCode(h.tree.beginPuts({ items: [item, item] }), Code.InvalidArgument);
    await expectCode(h.tree.beginPuts({ items: [fileItem("t7/y", randomBytes(10), { chunks: Array.from({ length: 33 }, () => chunk) })] }), Code.InvalidArgument);
    await expectCode(h.tree.commitPuts({ uploadIds: ["../etc"] }), Code.InvalidArgument);
    await expectCode(h.tree.commitPuts({ uploadIds: Array.from({ length: 1001 }, (_, i) => `id${i}`) }), Code.InvalidArgument);
    await expectCode(h.tree.getDownloads({ paths: ["a", "a"] }), Code.InvalidArgument);
    await expectCode(h.tree.deletePaths({ items: [] }), Code.InvalidArgument);
    const none = await h.deps.db.selectFrom("uploads").select("id").where("path", "like", "t7/%").execute();
    expect(none).toEqual([]);
  });

  it("sweeps an expired single put by deleting its object", async () => {
    const data = randomBytes(300);
    const p = pending((await h.tree.beginPuts({ items: [fileItem("t8/f", data)] })).results[0]!);
    await putBytes(p, data);
    const row = await h.deps.db.selectFrom("uploads").select("object_key").where("id", "=", p.uploadId).executeTakeFirstOrThrow();
    expect((await h.deps.store.stat(row.object_key)).size).toBe(300);
    await sweepUploads(h.deps, new Date(Date.now() + 2 * 3_600_000));
    await expect(h.deps.store.stat(row.object_key)).rejects.toBeInstanceOf(BlobError);
    expect(await h.deps.db.selectFrom("uploads").select("id").where("id", "=", p.uploadId).execute()).toEqual([]);
    expect(failure((await h.tree.commitPuts({ uploadIds: [p.uploadId] })).results[0]!).info?.reason).toBe(ErrorReason.UPLOAD_NOT_FOUND);
  });
});

describe("TreeService puts under tight limits", () => {
  let t: TreeHarness;
  beforeAll(async () => {
    t = await startTreeHarness({ settings: { limits: { openUploads: 1, openUploadBytes: 64 * 2 ** 40 } } });
  }, 120_000);
  afterAll(async () => t?.close());

  it("takes 1,000 pending puts beside a multipart upload, and bounds them still", async () => {
    // The one multipart upload max_open_uploads allows here.
    await t.uploads.createUpload(createRequest(specOf("big", randomBytes(1000), 1 << 20)));
    const batch = (from: number) => Array.from({ length: 1000 }, (_, i) => fileItem(`t9/${from + i}`, Buffer.from(`file ${from + i}`)));
    const first = await t.tree.beginPuts({ items: batch(0) });
    expect(first.results.every((r) => r.result.case === "pending")).toBe(true);
    const err = await expectCode(t.tree.beginPuts({ items: batch(1000) }), Code.ResourceExhausted);
    expect(err.message).toMatch(/small-file puts/);
  });
});

describe("TreeService puts: a URL that outlives its commit", () => {
  it("cannot overwrite the committed object, and a fresh BeginPuts gives a fresh key", async () => {
    const data = randomBytes(400);
    const first = pending((await h.tree.beginPuts({ items: [fileItem("t10/f", data)] })).results[0]!);
    const again = pending((await h.tree.beginPuts({ items: [fileItem("t10/f", data)] })).results[0]!);
    expect(again.uploadId).toBe(first.uploadId);
    expect(again.url).not.toBe(first.url);
    expect(await putBytes(again, data)).toBe(200);
    committed((await h.tree.commitPuts({ uploadIds: [again.uploadId] })).results[0]!);
    // Same length, other bytes, through the URL of the committed object: refused, and the object is intact.
    expect(await putBytes(again, randomBytes(400))).toBe(412);
    const dl = (await h.tree.getDownloads({ paths: ["t10/f"] })).results[0]!;
    if (dl.result.case !== "download") throw new Error("no download");
    expect(Buffer.from(await (await fetch(dl.result.value.url)).arrayBuffer()).equals(data)).toBe(true);
  });
});
