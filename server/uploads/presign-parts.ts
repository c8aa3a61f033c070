import type { ChunkDigest } from "../../shared/rules/content-hash.js";
import type { Deps } from "../deps.js";
import { invalid } from "../errors.js";

export interface PartUrl {
  partNumber: number;
  url: string;
  headers: Record<string, string>;
}

export const MAX_PRESIGN_BATCH = 1000;

/** Presigned PUTs for the given parts, each bound to its planned size. */
export async function presignParts(
  deps: Deps,
  upload: { objectKey: string; storeUploadId: string; chunks: ChunkDigest[] },
  partNumbers: readonly number[],
  origin: string,
): Promise<PartUrl[]> {
  if (partNumbers.length > MAX_PRESIGN_BATCH) throw invalid(`at most ${MAX_PRESIGN_BATCH} parts per call`);
  return Promise.all(
    partNumbers.map(async (partNumber) => {
      const chunk = upload.chunks[partNumber - 1];
      if (!chunk) throw invalid(`part ${partNumber} is not in this upload (1..${upload.chunks.length})`);
      const signed = await deps.store.presignPart({
        key: upload.objectKey,
        uploadId: upload.storeUploadId,
        partNumber,
        size: chunk.size,
        expiresInSeconds: deps.settings.urlTtlSeconds,
        origin,
      });
      return { partNumber, ...signed };
    }),
  );
}
