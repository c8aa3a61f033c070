import type { Deps } from "../deps.js";
import { chunksUndeclared, invalid } from "../errors.js";
import { openUpload } from "./open-upload.js";
import { partCount, readPlan, type PlanPart } from "./upload-plan.js";

export interface PartUrl {
  partNumber: number;
  url: string;
  headers: Record<string, string>;
  /** The most bytes the PUT may carry: the part's plaintext size. */
  maxSize: number;
}

/** Presigned PUTs for parts the client sends, each bound to at most its plaintext size. */
export async function presignParts(
  deps: Deps,
  upload: { objectKey: string; storeUploadId: string },
  parts: readonly PlanPart[],
  origin: string,
): Promise<PartUrl[]> {
  return Promise.all(
    parts.map(async (part) => {
      if (part.copy) throw new Error(`part ${part.partNumber} is one the server copies`);
      const signed = await deps.store.presignPart({
        key: upload.objectKey,
        uploadId: upload.storeUploadId,
        partNumber: part.partNumber,
        maxSize: part.size,
        expiresInSeconds: deps.settings.urlTtlSeconds,
        origin,
      });
      return { partNumber: part.partNumber, ...signed, maxSize: part.size };
    }),
  );
}

/**
 * Fresh URLs for parts of an open upload's plan (proto:
 * UploadService.PresignParts): only parts the client sends, once planned.
 */
export async function presignRequested(deps: Deps, namespaceId: number, uploadId: string, partNumbers: readonly number[], origin: string): Promise<PartUrl[]> {
  const upload = await openUpload(deps, namespaceId, uploadId);
  if (!upload.planned) throw chunksUndeclared(upload.chunks_declared, upload.chunk_count);
  const wanted = [...new Set(partNumbers)];
  const plan = new Map((await readPlan(deps.db, upload.id, wanted)).map((p) => [p.partNumber, p]));
  const parts = [];
  for (const n of wanted) {
    const part = plan.get(n);
    if (!part) throw invalid(`part ${n} is not in this upload (1..${await partCount(deps.db, upload.id)})`);
    if (part.copy) throw invalid(`part ${n} is one the server copies: there is nothing to send`);
    parts.push(part);
  }
  return presignParts(deps, { objectKey: upload.object_key, storeUploadId: upload.store_upload_id }, parts, origin);
}
