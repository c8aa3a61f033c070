import { contentHash, HASH_LENGTH, type ChunkDigest } from "../../shared/rules/content-hash.js";
import { checkPartSizes, MAX_PARTS } from "../../shared/rules/part-rules.js";
import { checkRemotePath } from "../../shared/rules/remote-path.js";
import { invalid } from "../errors.js";

export interface UploadSpec {
  path: string;
  size: number;
  contentHash: Buffer;
  chunks: ChunkDigest[];
  baseRevision: number | null;
}

/** Refuses a request that could never complete, before any database or store call. */
export function validateUpload(spec: UploadSpec): void {
  checkPath(spec.path);
  // First, so that an oversized list costs no more work.
  if (spec.chunks.length > MAX_PARTS) throw invalid(`chunks has ${spec.chunks.length} entries, over the ${MAX_PARTS}-part maximum`);
  if (spec.contentHash.length !== HASH_LENGTH) throw invalid(`content_hash must be ${HASH_LENGTH} bytes`);
  spec.chunks.forEach((c, i) => {
    if (c.hash.length !== HASH_LENGTH) throw invalid(`chunk ${i} hash must be ${HASH_LENGTH} bytes`);
  });
  const why = checkPartSizes(
    spec.chunks.map((c) => c.size),
    spec.size,
  );
  if (why) throw invalid(why);
  if (!contentHash(spec.chunks).equals(spec.contentHash)) throw invalid("content_hash does not match the chunk list");
  if (spec.baseRevision !== null && (!Number.isSafeInteger(spec.baseRevision) || spec.baseRevision < 0)) {
    throw invalid("base_revision must be 0 or more");
  }
}

export function checkPath(path: string): void {
  const why = checkRemotePath(path);
  if (why) throw invalid(why);
}
