import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorReason, ErrorInfoSchema } from "../../gen/drive/v1/errors_pb.js";
import { EntryKind } from "../../gen/drive/v1/types_pb.js";
import { fileItem, folderItem, putBytes, startTreeHarness, type TreeHarness } from "./tree-harness.js";

let h: TreeHarness;
beforeAll(async () => {
  h = await startTreeHarness();
}, 120_000);
afterAll(async () => h?.close());

/** Puts files of small distinct content through BeginPuts, PUT and CommitPuts. */
async function putTree(paths: string[]): Promise<void> {
  for (let i = 0; i < paths.length; i += 1000) {
    const batch = paths.slice(i, i + 1000);
    const data = batch.map((p) => Buffer.from(`content of ${p} ${randomBytes(4).toString("hex")}`));
    const begun = await h.tree.beginPuts({ items: batch.map((p, k) => fileItem(p, data[k]!, { mode: 0o640 })) });
    const ids: string[] = [];
    await Promise.all(
      begun.results.map(async (r, k) => {
        if (r.result.case !== "pending") throw new Error(`not pending: ${r.result.case}`);
        ids.push(r.result.value.uploadId);
        expect(await putBytes(r.result.value, data[k]!)).toBe(200);
      }),
    );
    const done = await h.tree.commitPuts({ uploadIds: ids });
    expect(done.results.every((r) => r.result.case === "committed")).toBe(true);
  }
}

async function expectCode(p: Promise<unknown>, code: Code, reason?: ErrorReason): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  expect((err as ConnectError).code, (err as Error).message).toBe(code);
  if (reason !== undefined) expect((err as ConnectError).findDetails(ErrorInfoSchema)[0]?.reason).toBe(reason);
}

const ns = () => h.caller.namespaceId;

describe("TreeService Move", () => {
  it("moves a folder of many files in one transaction, one journal entry each, no blob copied", async () => {
    const paths = Array.from({ length: 1200 }, (_, i) => `m1/src/d${i % 7}/f${i}`);
    await putTree(paths);
    await h.tree.beginPuts({ items: [folderItem("m1/src/empty", { mode: 0o700 })] });
    const blobsBefore = await h.deps.db.selectFrom("blobs").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    const before = await h.deps.db.selectFrom("namespaces").select("journal_seq").where("id", "=", ns()).executeTakeFirstOrThrow();
    const heads = new Map((await h.deps.db.selectFrom("files").select(["path", "blob_id", "revision"]).where("path", "like", "m1/src/%").execute()).map((r) => [r.path, r]));

    const { moved } = await h.tree.move({ fromPath: "m1/src", toPath: "m1/dst" });
    expect(moved).toBe(1201n);

    const after = await h.deps.db.selectFrom("namespaces").select("journal_seq").where("id", "=", ns()).executeTakeFirstOrThrow();
    expect(after.journal_seq - before.journal_seq).toBe(1201);
    const entries = await h.deps.db.selectFrom("journal").selectAll().where("namespace_id", "=", ns()).where("seq", ">", before.journal_seq).orderBy("seq").execute();
    expect(entries.every((e) => e.op === "move")).toBe(true);
    // One transaction: every entry committed at the same instant, numbered without a gap.
    expect(new Set(entries.map((e) => e.created_at.getTime())).size).toBe(1);
    for (const e of entries) {
      const old = heads.get(e.from_path!)!;
      expect(e.path).toBe(e.from_path!.replace("m1/src/", "m1/dst/"));
      expect(e.from_revision).toBe(old.revision + 1);
    }
    const blobsAfter = await h.deps.db.selectFrom("blobs").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    expect(blobsAfter.n).toBe(blobsBefore.n);
    const moved1 = await h.deps.db.selectFrom("files").selectAll().where("path", "=", "m1/dst/d3/f3").executeTakeFirstOrThrow();
    expect(moved1.blob_id).toBe(heads.get("m1/src/d3/f3")!.blob_id);
    expect(moved1.mode).toBe(0o640);
    expect((await h.files.stat({ path: "m1/dst/empty" })).file).toMatchObject({ kind: EntryKind.FOLDER, mode: 0o700 });

    // The old path keeps its history, ending in a deletion.
    const history = await h.files.listVersions({ path: "m1/src/d3/f3" });
    expect(history.versions.map((v) => [v.revision, v.deleted])).toEqual([
      [2n, true],
      [1n, false],
    ]);
    expect((await h.files.listFiles({ prefix: "m1/src/" })).files).toEqual([]);
    const dl = await h.tree.getDownloads({ paths: ["m1/dst/d3/f3"] });
    if (dl.results[0]!.result.case !== "download") throw new Error("no download");
    expect((await fetch(dl.results[0]!.result.value.url)).status).toBe(200);
  });

  it("moves a file, and checks its base revision", async () => {
    await putTree(["m2/a"]);
    await expectCode(h.tree.move({ fromPath: "m2/a", toPath: "m2/b", baseRevision: 7n }), Code.FailedPrecondition, ErrorReason.REVISION_CONFLICT);
    expect((await h.tree.move({ fromPath: "m2/a", toPath: "m2/b", baseRevision: 1n })).moved).toBe(1n);
    const [entry] = await h.deps.db.selectFrom("journal").selectAll().where("path", "=", "m2/b").execute();
    expect(entry).toMatchObject({ op: "move", from_path: "m2/a", from_revision: 2, revision: 1 });
    // And back onto the path it left, whose head is a deletion.
    expect((await h.tree.move({ fromPath: "m2/b", toPath: "m2/a" })).moved).toBe(1n);
    expect((await h.files.stat({ path: "m2/a" })).file?.revision).toBe(3n);
  });

  it("refuses an occupied destination, a move into itself, and nothing to move, changing nothing", async () => {
    await putTree(["m3/x/1", "m3/y/1", "m3/z"]);
    const seq = async () => (await h.deps.db.selectFrom("namespaces").select("journal_seq").where("id", "=", ns()).executeTakeFirstOrThrow()).journal_seq;
    const before = await seq();
    await expectCode(h.tree.move({ fromPath: "m3/x", toPath: "m3/y" }), Code.AlreadyExists, ErrorReason.DESTINATION_EXISTS);
    await expectCode(h.tree.move({ fromPath: "m3/x", toPath: "m3/z" }), Code.AlreadyExists, ErrorReason.DESTINATION_EXISTS);
    await expectCode(h.tree.move({ fromPath: "m3/x", toPath: "m3/x/inner" }), Code.InvalidArgument);
    await expectCode(h.tree.move({ fromPath: "m3/x", toPath: "m3/x" }), Code.InvalidArgument);
    await expectCode(h.tree.move({ fromPath: "m3/none", toPath: "m3/w" }), Code.NotFound);
    await expectCode(h.tree.move({ fromPath: "m3/x", toPath: "m3/../w" }), Code.InvalidArgument);
    await expectCode(h.tree.move({ fromPath: "m3/x", toPath: "m3/w", baseRevision: 1n }), Code.InvalidArgument);
    expect(await seq()).toBe(before);
  });
});

describe("TreeService DeletePaths", () => {
  it("deletes files and folder entries in one batch, failing single items", async () => {
    await putTree(["d1/a", "d1/b"]);
    await h.tree.beginPuts({ items: [folderItem("d1/empty")] });
    const res = await h.tree.deletePaths({
      items: [{ path: "d1/a" }, { path: "d1/empty" }, { path: "d1/none" }, { path: "d1/b", baseRevision: 9n }, { path: "d1/\u0000" }],
    });
    const [a, empty, none, stale, bad] = res.results;
    expect(a!.result.case === "committed" && a!.result.value).toMatchObject({ path: "d1/a", deleted: true, revision: 2n });
    expect(empty!.result.case === "committed" && empty!.result.value).toMatchObject({ deleted: true, kind: EntryKind.FOLDER });
    expect(none!.result.case === "error" && none!.result.value.code).toBe(Code.NotFound);
    expect(stale!.result.case === "error" && stale!.result.value.info?.reason).toBe(ErrorReason.REVISION_CONFLICT);
    expect(bad!.result.case === "error" && bad!.result.value.code).toBe(Code.InvalidArgument);
    expect((await h.files.listFiles({ prefix: "d1/" })).files.map((f) => f.path)).toEqual(["d1/b"]);
    const ops = await h.deps.db.selectFrom("journal").select(["op", "path", "kind"]).where("path", "in", ["d1/a", "d1/empty"]).where("op", "=", "delete").orderBy("seq").execute();
    expect(ops).toEqual([
      { op: "delete", path: "d1/a", kind: "file" },
      { op: "delete", path: "d1/empty", kind: "folder" },
    ]);
    // FileService.Delete takes folder entries too.
    await h.tree.beginPuts({ items: [folderItem("d1/again")] });
    expect((await h.files.delete({ path: "d1/again" })).revision).toBe(2n);
  });
});
