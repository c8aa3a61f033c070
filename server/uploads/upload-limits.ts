import { sql, type Kysely } from "kysely";
import type { UploadLimits } from "../config/server-options.js";
import { limitExceeded } from "../errors.js";
import type { Database } from "../metadata/schema.js";

/**
 * Open small-file puts (TreeService.BeginPuts) a user may hold per unit of
 * max_open_uploads: 100,000 under the default of 100, so a tree's batches of
 * 1,000 never wait on each other, while the count stays bounded. They count
 * by bytes against max_open_upload_bytes like any upload.
 */
export const SINGLES_PER_OPEN_UPLOAD = 1000;

/**
 * Refuses a new upload that would take a user past a limit on open uploads
 * (proto: UploadService.CreateUpload), or `singles` new small-file puts of
 * `size` bytes in all (BeginPuts). Multipart uploads count against
 * max_open_uploads; singles against their own cap (SINGLES_PER_OPEN_UPLOAD);
 * both by bytes. Race-free only inside a transaction that holds
 * lockUploadsOf: concurrent calls, on any instance sharing the database,
 * then count one after another.
 */
export async function checkUploadLimits(db: Kysely<Database>, limits: UploadLimits, userId: number, size: number, opts: { singles?: number } = {}): Promise<void> {
  const open = await db
    .selectFrom("uploads")
    .select([
      sql<number>`(count(*) filter (where kind = 'multipart'))::int`.as("count"),
      sql<number>`(count(*) filter (where kind = 'single'))::int`.as("singles"),
      sql<number>`coalesce(sum(size), 0)::bigint`.as("bytes"),
    ])
    .where("user_id", "=", userId)
    .where("state", "=", "open")
    .executeTakeFirstOrThrow();
  const singlesMax = limits.openUploads * SINGLES_PER_OPEN_UPLOAD;
  if (opts.singles && open.singles + opts.singles > singlesMax) {
    throw limitExceeded("resource_exhausted", "max_open_uploads", singlesMax, `too many open small-file puts: the limit is ${singlesMax} per user (${SINGLES_PER_OPEN_UPLOAD} × --max-open-uploads); commit some, or wait for them to expire`);
  }
  if (!opts.singles && open.count + 1 > limits.openUploads) {
    throw limitExceeded("resource_exhausted", "max_open_uploads", limits.openUploads, `too many open uploads: the limit is ${limits.openUploads} per user (--max-open-uploads); complete or abort some, or wait for them to expire`);
  }
  if (open.bytes + size > limits.openUploadBytes) {
    throw limitExceeded(
      "resource_exhausted",
      "max_open_upload_bytes",
      limits.openUploadBytes,
      `open uploads would declare ${bytes(open.bytes + size)}: the limit is ${bytes(limits.openUploadBytes)} per user (--max-open-upload-bytes); complete or abort some first`,
    );
  }
}

/**
 * Serialises upload creation per user until the transaction ends. A row
 * lock on the user, in the mode that foreign-key checks do not wait for:
 * the user's other writes go on meanwhile.
 */
export async function lockUploadsOf(db: Kysely<Database>, userId: number): Promise<void> {
  await db.selectFrom("users").select("id").where("id", "=", userId).forNoKeyUpdate().executeTakeFirstOrThrow();
}

/** "64 TiB", "1.5 GiB": binary units, as the options take them. */
function bytes(n: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : Number(v.toFixed(1))} ${units[i]}`;
}
