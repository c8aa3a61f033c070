import { sql, type Transaction } from "kysely";
import type { IncompleteUpload } from "../blob/blob-store.js";
import type { Deps } from "../deps.js";
import type { Database } from "../metadata/schema.js";

const BATCH = 100;
/** Completed rows stay this long, so that a CompleteUpload retried late still gets its answer. */
const KEEP_COMPLETED_MS = 24 * 60 * 60 * 1000;

/**
 * Aborts expired uploads in the store (a single PUT's object is deleted)
 * and removes their rows. Instances
 * sharing a database take turns: a pass runs only under a transaction-level
 * advisory lock, and an instance that does not get it skips the pass.
 * Returns how many uploads it aborted, or null when another instance held the lock.
 */
export async function sweepUploads(deps: Deps, now = new Date()): Promise<number | null> {
  // The whole pass, store calls included, runs under the lock: two instances never sweep at once.
  const expired = await deps.db.transaction().execute(async (tx) => {
    const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(hashtext('drive.upload-sweeper')) as locked`.execute(tx);
    if (!rows[0]?.locked) return null;
    const gone = await tx
      .deleteFrom("uploads")
      .where("id", "in", (eb) =>
        eb.selectFrom("uploads").select("id").where("state", "=", "open").where("expires_at", "<", now).limit(BATCH),
      )
      // Again on the row itself: PostgreSQL rechecks these, not the subquery, on a row that a
      // concurrent call extended (extendUpload) while this delete waited for its lock.
      .where("state", "=", "open")
      .where("expires_at", "<", now)
      .returning(["id", "kind", "object_key", "store_upload_id"])
      .execute();
    await tx
      .deleteFrom("uploads")
      .where("state", "=", "completed")
      .where("created_at", "<", new Date(now.getTime() - KEEP_COMPLETED_MS))
      .execute();
    // Aborting inside the transaction: if the store fails, the rows come back and the next pass retries.
    for (const u of gone) {
      // A small file's single PUT has no session to abort: its object, if it was PUT, is all there is.
      if (u.kind === "multipart") await deps.store.abortMultipart(u.object_key, u.store_upload_id);
      // A CompleteUpload that assembled the object and died before its commit left it behind; no version names it.
      await deps.store.delete(u.object_key);
    }
    await sweepOrphans(deps, tx, now);
    return gone;
  });
  if (expired === null) return null;
  for (const u of expired) deps.log.info("expired upload aborted", { upload_id: u.id });
  return expired.length;
}

/**
 * Store uploads with no row: a crash between createMultipart and the insert,
 * or an abort whose store call failed. Old enough to be no one's.
 */
async function sweepOrphans(deps: Deps, tx: Transaction<Database>, now: Date): Promise<void> {
  const cutoff = now.getTime() - deps.settings.uploadTtlMs;
  let old: IncompleteUpload[] = [];
  const settle = async () => {
    // One query per batch of store uploads, not one per upload.
    const ids = old.map((u) => u.uploadId);
    const known = new Set(
      ids.length ? (await tx.selectFrom("uploads").select("store_upload_id").where("store_upload_id", "in", ids).execute()).map((r) => r.store_upload_id) : [],
    );
    for (const u of old) {
      if (known.has(u.uploadId)) continue;
      await deps.store.abortMultipart(u.key, u.uploadId);
      deps.log.info("orphaned store upload aborted", { key: u.key });
    }
    old = [];
  };
  for await (const u of deps.store.listIncompleteUploads("ns/")) {
    if (u.initiated.getTime() >= cutoff) continue;
    old.push(u);
    if (old.length >= BATCH) await settle();
  }
  await settle();
}

/** Runs sweepUploads every `intervalMs` until the signal aborts. */
export function startUploadSweeper(deps: Deps, intervalMs: number, signal: AbortSignal): void {
  const timer = setInterval(() => {
    sweepUploads(deps).catch((err) => deps.log.warn("upload sweep failed", { err }));
  }, intervalMs);
  timer.unref();
  signal.addEventListener("abort", () => clearInterval(timer), { once: true });
}
