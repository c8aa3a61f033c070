import { randomBytes } from "node:crypto";
import type { Caller } from "../auth/users.js";
import type { Deps } from "../deps.js";
import { checkContentBase, readHead } from "../files/base-revision.js";
import { commitVersion } from "../files/commit-version.js";
import type { FileRow, UploadRow } from "../metadata/schema.js";
import { declaredChunks, firstDifference, insertChunks } from "./chunk-pages.js";
import { discardInStore } from "./abort-upload.js";
import { declarePage } from "./declare-page.js";
import { lockOpenUpload, planWhenDeclared } from "./plan-when-declared.js";
import { checkUploadLimits, lockUploadsOf } from "./upload-limits.js";
import { viewUpload, type UploadView } from "./upload-view.js";
import { validateUpload, type UploadSpec } from "./validate-upload.js";

export type CreateUploadResult =
  | { kind: "committed"; file: FileRow }
  | { kind: "open"; upload: UploadRow; resumed: boolean; view: UploadView };

/**
 * Starts, resumes or short-cuts an upload (proto: UploadService.CreateUpload).
 * Content this namespace already stores commits at once (on a stale base
 * too, when it is what the path holds now: identical content is not a
 * conflict, and that commit writes nothing); an open upload of
 * the same content to the same path resumes, with part states read from the
 * store itself, since a killed client never reported its last parts. A new
 * upload stores the first page of chunks, and is planned at once when that
 * page is the whole list.
 */
export async function createUpload(
  deps: Deps,
  caller: Caller,
  spec: UploadSpec,
  opts: { origin: string; window: number },
): Promise<CreateUploadResult> {
  const partSize = validateUpload(spec);
  const ns = caller.namespaceId;

  const committed = await commitIfStored(deps, caller, spec);
  if (committed) return { kind: "committed", file: committed };
  if (spec.baseRevision !== null) {
    // Content the path holds is stored, so commitIfStored took it, unless it landed since: then it is the answer too.
    const head = await readHead(deps.db, ns, spec.path);
    if (checkContentBase(spec.path, head, spec.baseRevision, { kind: "file", contentHash: spec.contentHash }) === "identical") {
      return { kind: "committed", file: head! };
    }
  }

  for (let attempt = 0; ; attempt++) {
    if (attempt > 3) throw new Error("upload row keeps changing under CreateUpload");
    const existing = await deps.db
      .selectFrom("uploads")
      .selectAll()
      .where("namespace_id", "=", ns)
      .where("path", "=", spec.path)
      .where("content_hash", "=", spec.contentHash)
      .where("state", "=", "open")
      .executeTakeFirst();
    if (existing?.kind === "single") {
      // A small-file put of the same content (BeginPuts) holds the slot: this multipart upload replaces it.
      await discard(deps, existing);
      continue;
    }
    let upload = existing ? await resumable(deps, existing, spec) : await start(deps, caller, spec, partSize);
    if (!upload) continue; // lost a race: look again
    if (existing && !(await sameChunkList(deps, upload, spec))) {
      // The same bytes cut another way (another chunker): that upload's plan cannot be followed.
      await discard(deps, upload);
      continue;
    }
    if (existing && spec.chunks.length > upload.chunks_declared) upload = await declareFirstPage(deps, upload.id, spec);
    let fresh;
    if (!upload.planned && upload.chunks_declared === upload.chunk_count) ({ upload, fresh } = await planWhenDeclared(deps, upload.id));
    const view = await viewUpload(deps, upload, { ...opts, ...(fresh ? { fresh } : {}) });
    if (!view) {
      // The store lost the upload: start over.
      await deps.db.deleteFrom("uploads").where("id", "=", upload.id).where("state", "=", "open").execute();
      continue;
    }
    return { kind: "open", upload, resumed: Boolean(existing), view };
  }
}

/** Commits a version straight away when the namespace already has this content. */
async function commitIfStored(deps: Deps, caller: Caller, spec: UploadSpec): Promise<FileRow | null> {
  let blob = await deps.db
    .selectFrom("blobs")
    .select(["id", "size", "content_hash", "hash_kind"])
    .where("namespace_id", "=", caller.namespaceId)
    .where("content_hash", "=", spec.contentHash)
    // A blob of the old kind never matches: its hash is over a chunk list, not the bytes.
    .where("hash_kind", "=", 1)
    .executeTakeFirst();
  // New content, the common case, needs no transaction. Blobs are never deleted, so a hit stays valid.
  if (!blob && spec.size > 0) return null;
  return deps.db.transaction().execute(async (tx) => {
    if (!blob) {
      // The empty file needs no object and has no chunks.
      blob = await tx
        .insertInto("blobs")
        .values({ namespace_id: caller.namespaceId, content_hash: spec.contentHash, size: 0, object_key: null, chunks: null, hash_kind: 1, stored_size: 0, chunk_count: 0 })
        .onConflict((oc) => oc.constraint("blobs_content").doUpdateSet({ size: 0 }))
        .returning(["id", "size", "content_hash", "hash_kind"])
        .executeTakeFirstOrThrow();
    }
    return commitVersion(tx, {
      namespaceId: caller.namespaceId,
      path: spec.path,
      authorId: caller.user.id,
      blob: { id: blob.id, size: blob.size, contentHash: blob.content_hash, hashKind: blob.hash_kind },
      mode: spec.mode ?? null,
      mtimeUs: spec.mtimeUs ?? null,
      baseRevision: spec.baseRevision,
    });
  });
}

/** Extends an open upload's life; null when it vanished meanwhile. */
async function resumable(deps: Deps, upload: UploadRow, spec: UploadSpec): Promise<UploadRow | null> {
  return (
    (await deps.db
      .updateTable("uploads")
      .set({ expires_at: new Date(Date.now() + deps.settings.uploadTtlMs), base_revision: spec.baseRevision, mode: spec.mode ?? null, mtime_us: spec.mtimeUs ?? null })
      .where("id", "=", upload.id)
      .where("state", "=", "open")
      .returningAll()
      .executeTakeFirst()) ?? null
  );
}

/** Whether a resumed upload holds the chunk list this request starts. */
async function sameChunkList(deps: Deps, upload: UploadRow, spec: UploadSpec): Promise<boolean> {
  if (upload.size !== spec.size || upload.chunk_count !== spec.chunkCount) return false;
  const known = Math.min(spec.chunks.length, upload.chunks_declared);
  return firstDifference(await declaredChunks(deps.db, upload.id, 0, known), spec.chunks, 0) < 0;
}

/** Declares the part of the first page a resumed upload lacks (an upload made by a call that stored less). */
async function declareFirstPage(deps: Deps, uploadId: string, spec: UploadSpec): Promise<UploadRow> {
  return deps.db.transaction().execute(async (tx) => {
    const row = await lockOpenUpload(tx, uploadId);
    const declared = await declarePage(tx, row, 0, spec.chunks);
    return { ...row, chunks_declared: declared };
  });
}

/** Drops an open upload and its store upload. */
async function discard(deps: Deps, upload: UploadRow): Promise<void> {
  const gone = await deps.db.deleteFrom("uploads").where("id", "=", upload.id).where("state", "=", "open").returning("id").executeTakeFirst();
  if (gone) await discardInStore(deps, upload);
}

async function start(deps: Deps, caller: Caller, spec: UploadSpec, partSize: number): Promise<UploadRow | null> {
  const { limits } = deps.settings;
  // A quick refusal before any store work; the check that counts runs under the lock below.
  await checkUploadLimits(deps.db, limits, caller.user.id, spec.size);
  const id = randomBytes(16).toString("hex");
  const objectKey = `ns/${caller.namespaceId}/${id}`;
  const storeUploadId = await deps.store.createMultipart(objectKey);
  let row: UploadRow | undefined;
  try {
    row = await deps.db.transaction().execute(async (tx) => {
      await lockUploadsOf(tx, caller.user.id);
      await checkUploadLimits(tx, limits, caller.user.id, spec.size);
      const inserted = await tx
        .insertInto("uploads")
        .values({
          id,
          namespace_id: caller.namespaceId,
          user_id: caller.user.id,
          path: spec.path,
          size: spec.size,
          content_hash: spec.contentHash,
          chunks: null,
          chunk_count: spec.chunkCount,
          chunks_declared: spec.chunks.length,
          part_size: partSize,
          planned: false,
          base_revision: spec.baseRevision,
          mode: spec.mode ?? null,
          mtime_us: spec.mtimeUs ?? null,
          object_key: objectKey,
          store_upload_id: storeUploadId,
          state: "open",
          expires_at: new Date(Date.now() + deps.settings.uploadTtlMs),
        })
        .onConflict((oc) => oc.columns(["namespace_id", "path", "content_hash"]).where("state", "=", "open").doNothing())
        .returningAll()
        .executeTakeFirst();
      if (inserted) await insertChunks(tx, id, 0, spec.chunks);
      return inserted;
    });
  } catch (err) {
    await deps.store.abortMultipart(objectKey, storeUploadId).catch((e) => deps.log.warn("could not abort unused store upload", { key: objectKey, err: e }));
    throw err;
  }
  if (!row) await deps.store.abortMultipart(objectKey, storeUploadId); // another request won
  return row ?? null;
}
