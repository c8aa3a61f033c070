import type { ChunkDigest } from "../../shared/rules/content-hash.js";
import type { Deps } from "../deps.js";
import { uploadNotFound } from "../errors.js";
import { declarePage } from "./declare-page.js";
import { openUpload } from "./open-upload.js";
import { planUpload } from "./plan-upload.js";
import { lockOpenUpload } from "./plan-when-declared.js";
import { viewUpload, type UploadView } from "./upload-view.js";

/**
 * Declares the next page of an upload's chunk list (proto:
 * UploadService.DeclareChunks). The call that declares the last chunk plans
 * the upload in the same transaction, so chunks and plan commit together,
 * and answers with the plan and the first URLs; a retry of it answers the
 * same, with part states from the store.
 */
export async function declareChunks(
  deps: Deps,
  namespaceId: number,
  req: { uploadId: string; first: number; chunks: ChunkDigest[] },
  opts: { origin: string; window: number },
): Promise<UploadView> {
  const open = await openUpload(deps, namespaceId, req.uploadId);
  const { upload, fresh } = await deps.db.transaction().execute(async (tx) => {
    const row = await lockOpenUpload(tx, open.id);
    const declared = await declarePage(tx, row, req.first, req.chunks);
    const upload = { ...row, chunks_declared: declared };
    if (upload.planned || declared < upload.chunk_count) return { upload };
    return { upload: { ...upload, planned: true }, fresh: await planUpload(tx, upload, deps.store) };
  });
  const view = await viewUpload(deps, upload, { ...opts, ...(fresh ? { fresh } : {}) });
  if (!view) throw uploadNotFound("gone from the store: expired or aborted");
  return view;
}
