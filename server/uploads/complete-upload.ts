import type { Transaction } from "kysely";
import type { Caller } from "../auth/users.js";
import type { Deps } from "../deps.js";
import { chunksUndeclared, DriveError, invalid, partsIncomplete, revisionConflict, uploadNotFound } from "../errors.js";
import { checkContentBase, readHead } from "../files/base-revision.js";
import { commitVersion } from "../files/commit-version.js";
import { lockNamespace } from "../journal/append-entry.js";
import type { Database, FileRow, UploadRow } from "../metadata/schema.js";
import { insertBlob } from "./commit-blob.js";
import type { PartCheck } from "./part-states.js";
import { readPlan, type PlanPart } from "./upload-plan.js";
import { listedState, type ListedState } from "./store-state.js";

/**
 * Completes an upload (proto: UploadService.CompleteUpload). Copies the
 * parts the server fills that the store lacks, checks every part against
 * the store's own listing and assembles the object first, holding no lock:
 * S3 may take a while to assemble a big object, and every commit in the
 * namespace would wait on a lock held meanwhile. Then one transaction,
 * under the namespace lock, checks the base revision again and commits
 * blob, chunk index, version, head and journal entry; a retry after a lost
 * reply finds the row completed and returns the same revision.
 *
 * Identical content is not a conflict: when the base is stale but the path
 * now holds this very content, the upload completes with the path's current
 * state, commits nothing, and its bytes in the store are dropped.
 */
export async function completeUpload(deps: Deps, caller: Caller, uploadId: string): Promise<FileRow> {
  const upload = await deps.db
    .selectFrom("uploads")
    .selectAll()
    .where("id", "=", uploadId)
    .where("namespace_id", "=", caller.namespaceId)
    .executeTakeFirst();
  if (!upload) throw uploadNotFound();
  if (upload.kind === "single") throw invalid("this upload is a small file's single PUT: commit it with TreeService.CommitPuts");
  const content = { kind: "file" as const, contentHash: upload.content_hash };
  let storedSize = 0;
  let assembled = false;
  if (upload.state === "open") {
    if (!upload.planned) throw chunksUndeclared(upload.chunks_declared, upload.chunk_count);
    // Refuse a stale base before assembling anything; the check that counts comes under the lock.
    let verdict: "write" | "identical" | DriveError;
    try {
      verdict = checkContentBase(upload.path, await readHead(deps.db, upload.namespace_id, upload.path), upload.base_revision, content);
    } catch (err) {
      if (!(err instanceof DriveError)) throw err;
      verdict = err;
    }
    // Another push sharing this upload may have completed it since we read it, and moved the
    // path on: then its version is this call's answer, not a conflict.
    if (verdict instanceof DriveError && !(await completedMeanwhile(deps, upload.id))) throw verdict;
    if (verdict === "write") {
      storedSize = await assemble(deps, upload);
      assembled = true;
    }
    // Test-only (test/e2e/crash-points.test.ts): dies as a power cut would, with the object assembled and nothing committed.
    if (assembled && process.env.DRIVE_TEST_CRASH_AT === "complete-after-store") process.kill(process.pid, "SIGKILL");
  }

  let orphanKey: string | null = null;
  let dropOurs = false;
  let lostRace = false;
  let file: FileRow;
  try {
    file = await deps.db.transaction().execute(async (tx) => {
      const row = await tx.selectFrom("uploads").selectAll().where("id", "=", upload.id).forUpdate().executeTakeFirst();
      if (!row) throw uploadNotFound();
      if (row.state === "completed") return completedResult(tx, row);

      // Holding the namespace lock from here keeps the base revision true until commit.
      await lockNamespace(tx, row.namespace_id);
      const head = await readHead(tx, row.namespace_id, row.path);
      let verdict: "write" | "identical";
      try {
        verdict = checkContentBase(row.path, head, row.base_revision, content);
        // Nothing was assembled: the path held this content a moment ago, and now must still.
        if (verdict === "write" && !assembled) throw revisionConflict(row.path, head, row.base_revision!);
      } catch (err) {
        lostRace = true;
        throw err;
      }
      if (verdict === "identical") {
        dropOurs = true;
        await finish(tx, row.id, head!.revision);
        return head!;
      }
      const blob = await insertBlob(tx, row, storedSize);
      // The same content landed through another upload meanwhile: keep that object, drop ours.
      if (!blob.created) orphanKey = row.object_key;
      const committed = await commitVersion(tx, {
        namespaceId: row.namespace_id,
        path: row.path,
        authorId: caller.user.id,
        blob: { id: blob.id, size: row.size, contentHash: row.content_hash, hashKind: 1 },
        mode: row.mode,
        mtimeUs: row.mtime_us,
        baseRevision: row.base_revision,
      });
      await finish(tx, row.id, committed.revision);
      return committed;
    });
  } catch (err) {
    if (lostRace) {
      // Another write took the path between the first check and the lock: the
      // assembled object is no one's, and the upload is over.
      await dropStored(deps, upload, assembled);
      await deps.db.deleteFrom("uploads").where("id", "=", upload.id).where("state", "=", "open").execute();
    }
    throw err;
  }
  if (dropOurs) await dropStored(deps, upload, assembled);
  if (orphanKey) {
    await deps.store.delete(orphanKey).catch((err) => deps.log.warn("could not delete duplicate object", { key: orphanKey, err }));
  }
  return file;
}

/** Marks the upload completed at `revision`. The row stays a day, for late retries; its chunks, plan and parts now live in blob_chunks. */
async function finish(tx: Transaction<Database>, uploadId: string, revision: number): Promise<void> {
  await tx.updateTable("uploads").set({ state: "completed", result_revision: revision }).where("id", "=", uploadId).execute();
  for (const table of ["upload_parts", "upload_plan", "upload_chunks"] as const) await tx.deleteFrom(table).where("upload_id", "=", uploadId).execute();
}

/** Drops an upload's bytes no version names: the assembled object, or the store's multipart session. */
async function dropStored(deps: Deps, upload: UploadRow, assembled: boolean): Promise<void> {
  const dropping = assembled ? deps.store.delete(upload.object_key) : deps.store.abortMultipart(upload.object_key, upload.store_upload_id);
  await dropping.catch((e: unknown) => deps.log.warn("could not drop unused upload bytes", { key: upload.object_key, err: e }));
}

async function completedMeanwhile(deps: Deps, uploadId: string): Promise<boolean> {
  const row = await deps.db.selectFrom("uploads").select("state").where("id", "=", uploadId).executeTakeFirst();
  return row?.state === "completed";
}

/**
 * Verifies the parts, copying what the server fills and the store lacks,
 * and completes the object in the store. Returns the object's size.
 */
async function assemble(deps: Deps, upload: UploadRow): Promise<number> {
  const plan = await readPlan(deps.db, upload.id);
  const target = { uploadId: upload.id, objectKey: upload.object_key, storeUploadId: upload.store_upload_id };
  let state = await listedOrGone(deps, upload, plan);
  if (state.kind === "assembled") return state.size;
  // The client's parts first: while some are missing, copying would only keep the client waiting.
  refuseIncomplete(state.check);
  if (state.check.toCopy.length && (await deps.copies.settle(upload.id))) {
    // This instance's background copies were still running: what they left undone is what to copy.
    state = await listedOrGone(deps, upload, plan);
    if (state.kind === "assembled") return state.size;
  }
  if (state.check.toCopy.length) {
    await deps.copies.copyNow(target, state.check.toCopy);
    state = await listedOrGone(deps, upload, plan);
    if (state.kind === "assembled") return state.size;
  }
  const { check, listing } = state;
  refuseIncomplete(check);
  if (check.toCopy.length) throw new Error(`upload ${upload.id}: parts ${check.toCopy.map((p) => p.partNumber).join(", ")} do not list as copied`);

  const etags = new Map(listing.map((p) => [p.partNumber, p.etag]));
  await deps.store.completeMultipart(
    upload.object_key,
    upload.store_upload_id,
    plan.map((p) => ({ partNumber: p.partNumber, etag: etags.get(p.partNumber)! })),
  );
  let size = 0;
  for (const p of plan) size += check.storedSizes.get(p.partNumber)!;
  return size;
}

function refuseIncomplete(check: PartCheck): void {
  if (check.missing.length || check.unconfirmed.length) throw partsIncomplete(check.missing, check.unconfirmed);
}

/** The store's listing and what it says about each part of the plan; NotFound when the upload is gone from it. */
async function listedOrGone(deps: Deps, upload: UploadRow, plan: readonly PlanPart[]): Promise<Exclude<ListedState, { kind: "gone" }>> {
  const state = await listedState(deps, upload, plan);
  // The row stays until the sweeper takes it.
  if (state.kind === "gone") throw uploadNotFound("gone from the store: expired or aborted");
  return state;
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
      "versions.content_hash_kind",
      "versions.kind",
      "versions.mode",
      "versions.mtime_us",
      "versions.created_at as modified_at",
    ])
    .where("files.namespace_id", "=", upload.namespace_id)
    .where("files.path", "=", upload.path)
    .where("versions.revision", "=", upload.result_revision!)
    .executeTakeFirstOrThrow();
  return row;
}
