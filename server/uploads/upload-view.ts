import type { Deps } from "../deps.js";
import type { UploadRow } from "../metadata/schema.js";
import type { PartCheck } from "./part-states.js";
import { presignParts, type PartUrl } from "./presign-parts.js";
import { storeState } from "./store-state.js";
import { readPlan, type PlanPart } from "./upload-plan.js";

/** A part of the plan with where it stands. */
export interface PartView extends PlanPart {
  stored: boolean;
  /** The store's ETag of an unvouched part held at its plaintext size (PartStatus.stored_etag); "" otherwise. */
  storedEtag: string;
}

/** What CreateUpload and DeclareChunks answer about an open upload. */
export interface UploadView {
  chunksDeclared: number;
  /** Empty until every chunk is declared. */
  parts: PartView[];
  urls: PartUrl[];
}

/** presign_window's default and cap (proto: CreateUploadRequest.presign_window). */
const DEFAULT_WINDOW = 64;
const MAX_WINDOW = 1000;

/**
 * The upload as the client should see it: its plan with each part's state
 * from the store's own listing (a killed client never reported its last
 * parts), and URLs for the first `window` parts the client still has to
 * send. `fresh` is a plan made just now, whose parts are all pending. Copy
 * parts the store lacks are (re)started in the background. Null when the
 * store lost the upload.
 */
export async function viewUpload(
  deps: Deps,
  upload: UploadRow,
  opts: { origin: string; window: number; fresh?: PlanPart[] },
): Promise<UploadView | null> {
  if (!upload.planned) return { chunksDeclared: upload.chunks_declared, parts: [], urls: [] };
  const plan = opts.fresh ?? (await readPlan(deps.db, upload.id));
  let check: Pick<PartCheck, "confirmed" | "unvouched" | "toCopy">;
  if (opts.fresh) check = { confirmed: new Set(), unvouched: new Map(), toCopy: plan.filter((p) => p.copy) };
  else {
    const state = await storeState(deps, upload, plan);
    if (!state) return null;
    check = state;
  }
  const target = { uploadId: upload.id, objectKey: upload.object_key, storeUploadId: upload.store_upload_id };
  deps.copies.start(target, check.toCopy);

  const window = Math.min(opts.window > 0 ? opts.window : DEFAULT_WINDOW, MAX_WINDOW);
  const pending = plan.filter((p) => !p.copy && !check.confirmed.has(p.partNumber)).slice(0, window);
  const urls = await presignParts(deps, { objectKey: upload.object_key, storeUploadId: upload.store_upload_id }, pending, opts.origin);
  return {
    chunksDeclared: upload.chunks_declared,
    parts: plan.map((p) => ({ ...p, stored: check.confirmed.has(p.partNumber), storedEtag: check.unvouched.get(p.partNumber) ?? "" })),
    urls,
  };
}
