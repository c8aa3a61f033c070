import { randomBytes } from "node:crypto";
import type { Caller } from "../auth/users.js";
import { isBlobNotFound } from "../blob/errors.js";
import type { Deps } from "../deps.js";
import { assertBaseRevision } from "../files/base-revision.js";
import { commitVersion } from "../files/commit-version.js";
import { packChunks, unpackChunks } from "../metadata/chunk-codec.js";
import type { FileRow, UploadRow } from "../metadata/schema.js";
import { checkParts, type PartCheck } from "./confirmed-parts.js";
import { MAX_PRESIGN_BATCH, presignParts, type PartUrl } from "./presign-parts.js";
import { reportedParts } from "./reported-parts.js";
import { checkUploadLimits, lockUploadsOf } from "./upload-limits.js";
import { validateUpload, type UploadSpec } from "./validate-upload.js";

export type CreateUploadResult =
  | { kind: "committed"; file: FileRow }
  | { kind: "open"; upload: UploadRow; resumed: boolean; stored: Set<number>; unvouched: Map<number, string>; urls: PartUrl[] };

const DEFAULT_WINDOW = 64;

/**
 * Starts, resumes or short-cuts an upload (proto: UploadService.CreateUpload).
 * Content this namespace already stores commits at once; an open upload of
 * the same content to the same path resumes, with part states read from the
 * store itself, since a killed client never reported its last parts.
 */
export async function createUpload(
  deps: Deps,
  caller: Caller,
  spec: UploadSpec,
  opts: { origin: string; window: number },
): Promise<CreateUploadResult> {
  validateUpload(spec);
  const ns = caller.namespaceId;

  const committed = await commitIfStored(deps, caller, spec);
  if (committed) return { kind: "committed", file: committed };
  await assertBaseRevision(deps.db, ns, spec.path, spec.baseRevision);

  for (let attempt = 0; ; attempt++) {
    const existing = await deps.db
      .selectFrom("uploads")
      .selectAll()
      .where("namespace_id", "=", ns)
      .where("path", "=", spec.path)
      .where("content_hash", "=", spec.contentHash)
      .where("state", "=", "open")
      .executeTakeFirst();
    const upload = existing ? await resumable(deps, existing, spec) : await start(deps, caller, spec);
    const parts = upload && existing ? await storedParts(deps, upload) : { confirmed: new Set<number>(), unvouched: new Map<number, string>() };
    if (!upload || !parts) {
      if (attempt > 2) throw new Error("upload row keeps changing under CreateUpload");
      if (upload) await deps.db.deleteFrom("uploads").where("id", "=", upload.id).where("state", "=", "open").execute();
      continue; // lost a race, or the store lost the upload: look again
    }
    const chunks = unpackChunks(upload.chunks);
    const window = Math.min(opts.window > 0 ? opts.window : DEFAULT_WINDOW, MAX_PRESIGN_BATCH);
    const pending = chunks.map((_, i) => i + 1).filter((n) => !parts.confirmed.has(n)).slice(0, window);
    const urls = await presignParts(
      deps,
      { objectKey: upload.object_key, storeUploadId: upload.store_upload_id, chunks },
      pending,
      opts.origin,
    );
    return { kind: "open", upload, resumed: Boolean(existing), stored: parts.confirmed, unvouched: parts.unvouched, urls };
  }
}

/** Commits a version straight away when the namespace already has this content. */
async function commitIfStored(deps: Deps, caller: Caller, spec: UploadSpec): Promise<FileRow | null> {
  let blob = await deps.db
    .selectFrom("blobs")
    .select(["id", "size", "content_hash"])
    .where("namespace_id", "=", caller.namespaceId)
    .where("content_hash", "=", spec.contentHash)
    .executeTakeFirst();
  // New content, the common case, needs no transaction. Blobs are never deleted, so a hit stays valid.
  if (!blob && spec.size > 0) return null;
  return deps.db.transaction().execute(async (tx) => {
    if (!blob) {
      // The empty file needs no object: its blob is the chunk list alone.
      blob = await tx
        .insertInto("blobs")
        .values({ namespace_id: caller.namespaceId, content_hash: spec.contentHash, size: 0, object_key: null, chunks: packChunks([]) })
        .onConflict((oc) => oc.constraint("blobs_content").doUpdateSet({ size: 0 }))
        .returning(["id", "size", "content_hash"])
        .executeTakeFirstOrThrow();
    }
    return commitVersion(tx, {
      namespaceId: caller.namespaceId,
      path: spec.path,
      authorId: caller.user.id,
      blob: { id: blob.id, size: blob.size, contentHash: blob.content_hash },
      baseRevision: spec.baseRevision,
    });
  });
}

/** Extends an open upload's life; null when it vanished meanwhile. */
async function resumable(deps: Deps, upload: UploadRow, spec: UploadSpec): Promise<UploadRow | null> {
  return (
    (await deps.db
      .updateTable("uploads")
      .set({ expires_at: new Date(Date.now() + deps.settings.uploadTtlMs), base_revision: spec.baseRevision })
      .where("id", "=", upload.id)
      .where("state", "=", "open")
      .returningAll()
      .executeTakeFirst()) ?? null
  );
}

async function start(deps: Deps, caller: Caller, spec: UploadSpec): Promise<UploadRow | null> {
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
      return tx
        .insertInto("uploads")
        .values({
          id,
          namespace_id: caller.namespaceId,
          user_id: caller.user.id,
          path: spec.path,
          size: spec.size,
          content_hash: spec.contentHash,
          chunks: packChunks(spec.chunks),
          base_revision: spec.baseRevision,
          object_key: objectKey,
          store_upload_id: storeUploadId,
          state: "open",
          expires_at: new Date(Date.now() + deps.settings.uploadTtlMs),
        })
        .onConflict((oc) => oc.columns(["namespace_id", "path", "content_hash"]).where("state", "=", "open").doNothing())
        .returningAll()
        .executeTakeFirst();
    });
  } catch (err) {
    await deps.store.abortMultipart(objectKey, storeUploadId).catch((e) => deps.log.warn("could not abort unused store upload", { key: objectKey, err: e }));
    throw err;
  }
  if (!row) await deps.store.abortMultipart(objectKey, storeUploadId); // another request won
  return row ?? null;
}

/** Where the store's parts stand (see checkParts); null when the store has no such upload. */
async function storedParts(deps: Deps, upload: UploadRow): Promise<PartCheck | null> {
  let listing;
  try {
    listing = await deps.store.listParts(upload.object_key, upload.store_upload_id);
  } catch (err) {
    if (!isBlobNotFound(err)) throw err;
    // A CompleteUpload that assembled the object and died before its commit:
    // every part is in it, and CompleteUpload commits it as it stands.
    const object = await deps.store.stat(upload.object_key).catch(() => null);
    if (object?.size === upload.size) {
      const confirmed = new Set(unpackChunks(upload.chunks).map((_, i) => i + 1));
      return { confirmed, missing: [], unconfirmed: [], unvouched: new Map() };
    }
    // Gone for good: an object half made of it is no one's.
    await deps.store.delete(upload.object_key).catch((e) => deps.log.warn("could not delete unused object", { key: upload.object_key, err: e }));
    return null;
  }
  const reported = await reportedParts(deps.db, upload.id);
  return checkParts(unpackChunks(upload.chunks), listing, reported, deps.store.features);
}
