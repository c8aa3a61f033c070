import { isBlobNotFound } from "../blob/errors.js";
import type { Deps } from "../deps.js";
import type { UploadRow } from "../metadata/schema.js";
import { readPartRecords } from "./part-reports.js";
import { checkParts, expectedStoredSize, type PartCheck } from "./part-states.js";
import type { PlanPart } from "./upload-plan.js";

/**
 * Where a planned upload's parts stand in the store (see checkParts); null
 * when the store has no such upload any more.
 */
export async function storeState(deps: Deps, upload: UploadRow, plan: readonly PlanPart[]): Promise<PartCheck | null> {
  const records = await readPartRecords(deps.db, upload.id);
  let listing;
  try {
    listing = await deps.store.listParts(upload.object_key, upload.store_upload_id);
  } catch (err) {
    if (!isBlobNotFound(err)) throw err;
    // A CompleteUpload that assembled the object and died before its commit:
    // every part is in it, and CompleteUpload commits it as it stands.
    const expected = expectedStoredSize(plan, records);
    const object = await deps.store.stat(upload.object_key).catch(() => null);
    if (expected !== null && object?.size === expected) {
      return { confirmed: new Set(plan.map((p) => p.partNumber)), missing: [], unconfirmed: [], unvouched: new Map(), toCopy: [], storedSizes: new Map() };
    }
    // Gone for good: an object half made of it is no one's.
    await deps.store.delete(upload.object_key).catch((e) => deps.log.warn("could not delete unused object", { key: upload.object_key, err: e }));
    return null;
  }
  return checkParts(plan, listing, records);
}
