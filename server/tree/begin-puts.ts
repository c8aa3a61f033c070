import { randomBytes } from "node:crypto";
import type { Caller } from "../auth/users.js";
import type { Deps } from "../deps.js";
import { DriveError } from "../errors.js";
import { checkContentBase } from "../files/base-revision.js";
import { commitMany, type CommitItem } from "../files/commit-many.js";
import { inBatches, withoutJit } from "../files/in-batches.js";
import type { FileRow } from "../metadata/schema.js";
import { checkUploadLimits, lockUploadsOf } from "../uploads/upload-limits.js";
import type { PutSpec } from "./put-spec.js";

export type BeginOutcome =
  | { kind: "committed"; file: FileRow }
  | { kind: "pending"; uploadId: string; url: string; headers: Record<string, string> }
  | { kind: "error"; error: DriveError };

/**
 * BeginPuts (tree.proto) for checked items: folder entries, content the
 * namespace already stores and attribute changes commit at once, in one
 * transaction; new content gets an upload row of kind single (its chunks
 * in upload_chunks) and a presigned PUT of the whole object. An open put of
 * the same content to the same path is reused, so a retry costs no second
 * object. Queries per call are a handful, whatever the item count.
 */
export async function beginPuts(deps: Deps, caller: Caller, specs: ReadonlyArray<PutSpec | DriveError>, origin: string): Promise<BeginOutcome[]> {
  const ns = caller.namespaceId;
  const out: BeginOutcome[] = specs.map((s) => (s instanceof DriveError ? { kind: "error", error: s } : (undefined as never)));
  const files = specs.flatMap((s, index) => (s instanceof DriveError ? [] : [{ s, index }]));

  const hashes = [...new Set(files.filter((f) => f.s.kind === "file" && f.s.size > 0).map((f) => f.s.contentHash!.toString("hex")))];
  const stored = new Map<string, { id: number; size: number }>();
  for (const batch of inBatches(hashes, 2000)) {
    const rows = await deps.db
      .selectFrom("blobs")
      .select(["id", "size", "content_hash"])
      .where("namespace_id", "=", ns)
      .where("hash_kind", "=", 1)
      .where("content_hash", "in", batch.map((h) => Buffer.from(h, "hex")))
      .execute();
    for (const r of rows) stored.set(r.content_hash.toString("hex"), r);
  }

  const now: Array<{ s: PutSpec; index: number }> = [];
  const later: Array<{ s: PutSpec; index: number }> = [];
  for (const f of files) (f.s.kind === "folder" || f.s.size === 0 || stored.has(f.s.contentHash!.toString("hex")) ? now : later).push(f);

  if (now.length) await commitNow(deps, caller, now, stored, out);
  if (later.length) await openPuts(deps, caller, later, origin, out);
  return out;
}

async function commitNow(
  deps: Deps,
  caller: Caller,
  items: Array<{ s: PutSpec; index: number }>,
  stored: Map<string, { id: number; size: number }>,
  out: BeginOutcome[],
): Promise<void> {
  const ns = caller.namespaceId;
  const outcomes = await deps.db.transaction().execute(async (tx) => {
    await withoutJit(tx);
    let empty: number | undefined;
    if (items.some((i) => i.s.kind === "file" && i.s.size === 0)) {
      // The empty file needs no object and has no chunks.
      ({ id: empty } = await tx
        .insertInto("blobs")
        .values({ namespace_id: ns, content_hash: items.find((i) => i.s.kind === "file" && i.s.size === 0)!.s.contentHash!, size: 0, object_key: null, chunks: null, hash_kind: 1, stored_size: 0, chunk_count: 0 })
        .onConflict((oc) => oc.constraint("blobs_content").doUpdateSet({ size: 0 }))
        .returning("id")
        .executeTakeFirstOrThrow());
    }
    const commits: CommitItem[] = items.map(({ s }) => ({
      path: s.path,
      content:
        s.kind === "folder"
          ? { kind: "folder" }
          : { kind: "file", blob: { id: s.size === 0 ? empty! : stored.get(s.contentHash!.toString("hex"))!.id, size: s.size, contentHash: s.contentHash!, hashKind: 1 } },
      mode: s.mode,
      mtimeUs: s.mtimeUs,
      baseRevision: s.baseRevision,
    }));
    return commitMany(tx, { namespaceId: ns, authorId: caller.user.id }, commits);
  });
  outcomes.forEach((o, i) => {
    out[items[i]!.index] = o.ok ? { kind: "committed", file: o.file } : { kind: "error", error: o.error };
  });
}

async function openPuts(deps: Deps, caller: Caller, items: Array<{ s: PutSpec; index: number }>, origin: string, out: BeginOutcome[]): Promise<void> {
  const ns = caller.namespaceId;
  // A stale base fails now rather than after the bytes are sent; CommitPuts checks again under the lock.
  // A stale base on content the path already holds needs no bytes at all: it succeeds as it stands.
  const heads = new Map<string, FileRow>();
  for (const batch of inBatches(items.filter((i) => i.s.baseRevision !== null).map((i) => i.s.path), 2000)) {
    const rows = await deps.db.selectFrom("files").selectAll().where("namespace_id", "=", ns).where("path", "in", batch).execute();
    for (const r of rows) heads.set(r.path, r);
  }
  const open: Array<{ s: PutSpec; index: number }> = [];
  for (const item of items) {
    try {
      const head = heads.get(item.s.path);
      if (checkContentBase(item.s.path, head, item.s.baseRevision, { kind: item.s.kind, contentHash: item.s.contentHash }) === "identical") {
        out[item.index] = { kind: "committed", file: head! };
      } else open.push(item);
    } catch (err) {
      if (!(err instanceof DriveError)) throw err;
      out[item.index] = { kind: "error", error: err };
    }
  }
  if (open.length === 0) return;

  const { limits, uploadTtlMs } = deps.settings;
  const expires = new Date(Date.now() + uploadTtlMs);
  const rows = await deps.db.transaction().execute(async (tx) => {
    await withoutJit(tx);
    await lockUploadsOf(tx, caller.user.id);
    await checkUploadLimits(tx, limits, caller.user.id, open.reduce((n, i) => n + i.s.size, 0), { singles: open.length });
    const upserted: Array<{ id: string; path: string; object_key: string; size: number }> = [];
    for (const batch of inBatches(open, 1000)) {
      const values = batch.map(({ s }) => {
        const id = randomBytes(16).toString("hex");
        return {
          id,
          kind: "single" as const,
          namespace_id: ns,
          user_id: caller.user.id,
          path: s.path,
          size: s.size,
          content_hash: s.contentHash!,
          chunks: null,
          chunk_count: s.chunks.length,
          chunks_declared: s.chunks.length,
          part_size: s.size,
          planned: true,
          base_revision: s.baseRevision,
          mode: s.mode,
          mtime_us: s.mtimeUs,
          // A fresh key each time, also for a reused put: a URL handed out earlier can never reach the object committed.
          object_key: `ns/${ns}/${randomBytes(16).toString("hex")}`,
          store_upload_id: "",
          state: "open" as const,
          expires_at: expires,
        };
      });
      const got = await tx
        .insertInto("uploads")
        .values(values)
        .onConflict((oc) =>
          oc
            .columns(["namespace_id", "path", "content_hash"])
            .where("state", "=", "open")
            .doUpdateSet((eb) => ({
              expires_at: eb.ref("excluded.expires_at"),
              object_key: eb.ref("excluded.object_key"),
              base_revision: eb.ref("excluded.base_revision"),
              mode: eb.ref("excluded.mode"),
              mtime_us: eb.ref("excluded.mtime_us"),
            }))
            // A multipart upload of the same content to the same path stays as it is.
            .where("uploads.kind", "=", "single"),
        )
        .returning(["id", "path", "object_key", "size"])
        .execute();
      upserted.push(...got);
    }
    const ids = upserted.map((u) => u.id);
    // The chunk list as this call gives it: a reused put may have been cut another way.
    for (const batch of inBatches(ids, 2000)) await tx.deleteFrom("upload_chunks").where("upload_id", "in", batch).execute();
    const byPath = new Map(upserted.map((u) => [u.path, u]));
    const chunkRows = open.flatMap(({ s }) => {
      const u = byPath.get(s.path);
      return u ? s.chunks.map((c, seq) => ({ upload_id: u.id, seq, size: c.size, hash: Buffer.from(c.hash) })) : [];
    });
    for (const batch of inBatches(chunkRows, 5000)) await tx.insertInto("upload_chunks").values(batch).execute();
    return byPath;
  });

  const signed = await Promise.all(
    open.map(async ({ s }) => {
      const u = rows.get(s.path);
      if (!u) return null;
      return { u, req: await deps.store.presignPut({ key: u.object_key, size: u.size, expiresInSeconds: deps.settings.urlTtlSeconds, origin }) };
    }),
  );
  open.forEach((item, i) => {
    const got = signed[i];
    out[item.index] = got
      ? { kind: "pending", uploadId: got.u.id, url: got.req.url, headers: got.req.headers }
      : {
          kind: "error",
          error: new DriveError("failed_precondition", `${item.s.path}: an upload of this content through UploadService is open; complete or abort it`),
        };
  });
}
