import type { Transaction } from "kysely";
import type { Caller } from "../auth/users.js";
import type { StoredPart } from "../blob/blob-store.js";
import { isBlobNotFound } from "../blob/errors.js";
import type { Deps } from "../deps.js";
import { partsIncomplete, uploadNotFound } from "../errors.js";
import { assertBaseRevision } from "../files/base-revision.js";
import { commitVersion } from "../files/commit-version.js";
import { lockNamespace } from "../journal/append-entry.js";
import { checkParts } from "./confirmed-parts.js";
import { reportedParts } from "./reported-parts.js";
import { unpackChunks } from "../metadata/chunk-codec.js";
import type { Database, FileRow, UploadRow } from "../metadata/schema.js";

/**
 * Completes an upload (proto: UploadService.CompleteUpload). Checks every
 * part against the store's own listing and assembles the object first,
 * holding no lock: S3 may take a while to assemble a big object, and every
 * commit in the namespace would wait on a lock held meanwhile. Then one
 * transaction, under the namespace lock, checks the base revision again and
 * commits version, head and journal entry; a retry after a lost reply finds
 * the row completed and returns the same revision.
 */
export async function completeUpload(deps: Deps, caller: Caller, uploadId: string): Promise<FileRow> {
  const upload = await deps.db
    .selectFrom("uploads")
    .selectAll()
    .where("id", "=", uploadId)
    .where("namespace_id", "=", caller.namespaceId)
    .executeTakeFirst();
  if (!upload) throw uploadNotFound();
  if (upload.state === "open") {
    // Refuse a stale base before assembling anything; the check that counts comes under the lock.
    const stale = await assertBaseRevision(deps.db, upload.namespace_id, upload.path, upload.base_revision).then(
      () => null,
      (err: unknown) => err,
    );
    // Another push sharing this upload may have completed it since we read it, and moved the
    // path on: then its version is this call's answer, not a conflict.
    if (stale && !(await completedMeanwhile(deps, upload.id))) throw stale;
    if (!stale) await assemble(deps, upload);
    // Test-only (test/e2e/crash-points.test.ts): dies as a power cut would, with the object assembled and nothing committed.
    if (!stale && process.env.DRIVE_TEST_CRASH_AT === "complete-after-store") process.kill(process.pid, "SIGKILL");
  }

  let orphanKey: string | null = null;
  let lostRace = false;
  let file: FileRow;
  try {
    file = await deps.db.transaction().execute(async (tx) => {
      const row = await tx.selectFrom("uploads").selectAll().where("id", "=", upload.id).forUpdate().executeTakeFirst();
      if (!row) throw uploadNotFound();
      if (row.state === "completed") return completedResult(tx, row);

      // Holding the namespace lock from here keeps the base revision true until commit.
      await lockNamespace(tx, row.namespace_id);
      await assertBaseRevision(tx, row.namespace_id, row.path, row.base_revision).catch((err: unknown) => {
        lostRace = true;
        throw err;
      });
      const blob = await tx
        .insertInto("blobs")
        .values({
          namespace_id: row.namespace_id,
          content_hash: row.content_hash,
          size: row.size,
          object_key: row.object_key,
          chunks: row.chunks,
        })
        .onConflict((oc) => oc.constraint("blobs_content").doNothing())
        .returning("id")
        .executeTakeFirst();
      let blobId = blob?.id;
      if (blobId === undefined) {
        // The same content landed through another upload meanwhile: keep that object, drop ours.
        orphanKey = row.object_key;
        blobId = (
          await tx
            .selectFrom("blobs")
            .select("id")
            .where("namespace_id", "=", row.namespace_id)
            .where("content_hash", "=", row.content_hash)
            .executeTakeFirstOrThrow()
        ).id;
      }
      const committed = await commitVersion(tx, {
        namespaceId: row.namespace_id,
        path: row.path,
        authorId: caller.user.id,
        blob: { id: blobId, size: row.size, contentHash: row.content_hash },
        baseRevision: row.base_revision,
      });
      await tx.updateTable("uploads").set({ state: "completed", result_revision: committed.revision }).where("id", "=", row.id).execute();
      await tx.deleteFrom("upload_parts").where("upload_id", "=", row.id).execute();
      return committed;
    });
  } catch (err) {
    if (lostRace) {
      // Another write took the path between the first check and the lock: the
      // assembled object is no one's, and the upload is over.
      await deps.store.delete(upload.object_key).catch((e) => deps.log.warn("could not delete unused object", { key: upload.object_key, err: e }));
      await deps.db.deleteFrom("uploads").where("id", "=", upload.id).where("state", "=", "open").execute();
    }
    throw err;
  }
  if (orphanKey) {
    await deps.store.delete(orphanKey).catch((err) => deps.log.warn("could not delete duplicate object", { key: orphanKey, err }));
  }
  return file;
}

async function completedMeanwhile(deps: Deps, uploadId: string): Promise<boolean> {
  const row = await deps.db.selectFrom("uploads").select("state").where("id", "=", uploadId).executeTakeFirst();
  return row?.state === "completed";
}

/** Verifies the parts and completes the object in the store. */
async function assemble(deps: Deps, upload: UploadRow): Promise<void> {
  let parts: StoredPart[];
  try {
    parts = await deps.store.listParts(upload.object_key, upload.store_upload_id);
  } catch (err) {
    if (!isBlobNotFound(err)) throw err;
    // An earlier attempt may have completed the object and then lost its transaction.
    const object = await deps.store.stat(upload.object_key).catch(() => null);
    if (object?.size === upload.size) return;
    // The row stays until the sweeper takes it.
    throw uploadNotFound("gone from the store: expired or aborted");
  }
  const chunks = unpackChunks(upload.chunks);
  const check = checkParts(chunks, parts, await reportedParts(deps.db, upload.id), deps.store.features);
  if (check.missing.length || check.unconfirmed.length) throw partsIncomplete(check.missing, check.unconfirmed);
  const byNumber = new Map(parts.map((p) => [p.partNumber, p]));
  const complete = chunks.map((_, i) => byNumber.get(i + 1)!);
  await deps.store.completeMultipart(upload.object_key, upload.store_upload_id, complete);
}

/** The file as the completing call left it, for an idempotent retry. */
async function completedResult(tx: Transaction<Database>, upload: UploadRow): Promise<FileRow> {
  const row = await tx
    .selectFrom("files")
    .innerJoin("versions", "versions.file_id", "files.id")
    .select([
      "files.id",
      "files.namespace_id",
      "files.path",
      "versions.revision",
      "versions.deleted",
      "versions.blob_id",
      "versions.size",
      "versions.content_hash",
      "versions.created_at as modified_at",
    ])
    .where("files.namespace_id", "=", upload.namespace_id)
    .where("files.path", "=", upload.path)
    .where("versions.revision", "=", upload.result_revision!)
    .executeTakeFirstOrThrow();
  return row;
}
