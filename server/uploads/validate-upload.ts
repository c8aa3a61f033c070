import { contentHash, HASH_LENGTH, type ChunkDigest } from "../core/content-hash.js";
import { checkPartSizes } from "../core/part-rules.js";
import { checkRemotePath } from "../core/remote-path.js";
import { invalid } from "../errors.js";

export interface UploadSpec {
  path: string;
  size: number;
  contentHash: Buffer;
  chunks: ChunkDigest[];
  baseRevision: number | null;
}

/** Refuses a request that could never complete, before any store call. */
export function validateUpload(spec: UploadSpec): void {
  checkPath(spec.path);
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
