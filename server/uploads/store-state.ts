import type { StoredPart } from "../blob/blob-store.js";
import { isBlobNotFound } from "../blob/errors.js";
import type { Deps } from "../deps.js";
import type { UploadRow } from "../metadata/schema.js";
import { readPartRecords } from "./part-reports.js";
import { checkParts, expectedStoredSize, type PartCheck } from "./part-states.js";
import type { PlanPart } from "./upload-plan.js";

/**
 * What the store holds of an upload: its parts with what they say about
 * the plan (see checkParts), or, when it has no such upload any more, the
 * whole object that an earlier CompleteUpload assembled before dying
 * (every part is in it), or nothing at all.
 */
export type ListedState =
  | { kind: "parts"; listing: StoredPart[]; check: PartCheck }
  | { kind: "assembled"; size: number }
  | { kind: "gone" };

export async function listedState(deps: Deps, upload: UploadRow, plan: readonly PlanPart[]): Promise<ListedState> {
  const records = await readPartRecords(deps.db, upload.id);
  let listing: StoredPart[];
  try {
    listing = await deps.store.listParts(upload.object_key, upload.store_upload_id);
  } catch (err) {
    if (!isBlobNotFound(err)) throw err;
    const expected = expectedStoredSize(plan, records);
    const object = await deps.store.stat(upload.object_key).catch(() => null);
    return expected !== null && object?.size === expected ? { kind: "assembled", size: expected } : { kind: "gone" };
  }
  return { kind: "parts", listing, check: checkParts(plan, listing, records) };
}

/**
 * Where a planned upload's parts stand in the store (see checkParts); null
 * when the store has no such upload any more.
 */
export async function storeState(deps: Deps, upload: UploadRow, plan: readonly PlanPart[]): Promise<PartCheck | null> {
  const state = await listedState(deps, upload, plan);
  if (state.kind === "parts") return state.check;
  // Assembled, then not committed: CompleteUpload commits it as it stands.
  if (state.kind === "assembled") {
    return { confirmed: new Set(plan.map((p) => p.partNumber)), missing: [], unconfirmed: [], unvouched: new Map(), toCopy: [], storedSizes: new Map() };
  }
  // Gone for good: an object half made of it is no one's.
  await deps.store.delete(upload.object_key).catch((e) => deps.log.warn("could not delete unused object", { key: upload.object_key, err: e }));
  return null;
}
