import type { Deps } from "../deps.js";
import type { UploadRow } from "../metadata/schema.js";

/**
 * Moves an open upload's expiry a full TTL ahead: any call on it shows the
 * push is alive, however long it takes. Skips the write while the expiry
 * was moved within the last tenth of the TTL, so a busy push costs one
 * write per tenth of the TTL, not one per call. Returns false when the
 * upload is gone or no longer open.
 */
export async function extendUpload(deps: Deps, upload: Pick<UploadRow, "id" | "expires_at">, now = Date.now()): Promise<boolean> {
  const ttl = deps.settings.uploadTtlMs;
  if (upload.expires_at.getTime() - now > ttl - ttl / 10) return true;
  const expires = new Date(now + ttl);
  const row = await deps.db
    .updateTable("uploads")
    .set({ expires_at: expires })
    .where("id", "=", upload.id)
    .where("state", "=", "open")
    // Another instance may have moved it further meanwhile: never move it back.
    .where("expires_at", "<", expires)
    .returning("id")
    .executeTakeFirst();
  if (row) return true;
  const still = await deps.db.selectFrom("uploads").select("id").where("id", "=", upload.id).where("state", "=", "open").executeTakeFirst();
  return Boolean(still);
}
