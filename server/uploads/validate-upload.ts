import { Blake3Hasher } from "@napi-rs/blake-hash";
import { MAX_CHUNKS_PER_PAGE, maxChunkCount } from "../../shared/rules/chunking.js";
import { HASH_LENGTH, type ChunkDigest } from "../../shared/rules/content-hash.js";
import { MAX_FILE_SIZE } from "../../shared/rules/part-rules.js";
import { checkRemotePath } from "../../shared/rules/remote-path.js";
import { invalid } from "../errors.js";
import { checkPage } from "./chunk-pages.js";
import { uploadPartSize } from "./part-size.js";

export interface UploadSpec {
  path: string;
  size: number;
  /** BLAKE3 of the file's bytes (ContentHashKind BLAKE3). */
  contentHash: Buffer;
  /** How many chunks the file has; `chunks` is the first page of them. */
  chunkCount: number;
  chunks: ChunkDigest[];
  /** As the client asked: 0 for the default. */
  partSize: number;
  baseRevision: number | null;
  /** Permission bits and the file's own mtime in µs, to commit with it; null: not said. */
  mode?: number | null;
  mtimeUs?: number | null;
}

/** BLAKE3 of no bytes: the only content hash an empty file can have. */
const EMPTY_HASH = new Blake3Hasher().digestBuffer();

/**
 * Refuses a CreateUpload that could never complete, before any database or
 * store call, and returns the part size the upload will be planned with.
 */
export function validateUpload(spec: UploadSpec): number {
  checkPath(spec.path);
  // First, so that an oversized list costs no more work.
  if (spec.chunks.length > MAX_CHUNKS_PER_PAGE) throw invalid(`chunks has ${spec.chunks.length} entries, over the ${MAX_CHUNKS_PER_PAGE}-chunk page maximum`);
  if (spec.contentHash.length !== HASH_LENGTH) throw invalid(`content_hash must be ${HASH_LENGTH} bytes`);
  if (!Number.isSafeInteger(spec.size) || spec.size < 0) throw invalid(`size ${spec.size} is not a valid byte count`);
  if (spec.size > MAX_FILE_SIZE) throw invalid(`size ${spec.size} is over the ${MAX_FILE_SIZE}-byte maximum (10,000 parts of 5 GiB)`);
  const most = maxChunkCount(spec.size);
  if (spec.size > 0 && spec.chunkCount < 1) throw invalid("chunk_count must be at least 1 for a file that is not empty");
  if (spec.chunkCount > most) throw invalid(`chunk_count ${spec.chunkCount} is over the ${most} chunks a file of ${spec.size} bytes can have`);
  if (spec.chunks.length > spec.chunkCount) throw invalid(`chunks has ${spec.chunks.length} entries, past chunk_count ${spec.chunkCount}`);
  checkPage(spec.chunks, { first: 0, chunkCount: spec.chunkCount, size: spec.size, bytesBefore: 0 });
  // The server cannot hash bytes it never sees, except where the hash is known without them.
  if (spec.size === 0 && !spec.contentHash.equals(EMPTY_HASH)) throw invalid("content_hash of an empty file must be the BLAKE3 of no bytes");
  if (spec.chunkCount === 1 && spec.chunks.length === 1 && !spec.contentHash.equals(spec.chunks[0]!.hash)) {
    throw invalid("content_hash of a file of one chunk must be that chunk's hash");
  }
  if (spec.baseRevision !== null && (!Number.isSafeInteger(spec.baseRevision) || spec.baseRevision < 0)) {
    throw invalid("base_revision must be 0 or more");
  }
  checkAttributes(spec);
  return uploadPartSize(spec.size, spec.partSize);
}

/** 1970 up to the end of 9999, in µs. */
const MAX_MTIME_US = 253402300799999999;

/** Mode at most 0o7777 (permission bits only), mtime from 1970 to 9999. */
export function checkAttributes(attrs: { mode?: number | null | undefined; mtimeUs?: number | null | undefined }): void {
  if (attrs.mode != null && (!Number.isInteger(attrs.mode) || attrs.mode < 0 || attrs.mode > 0o7777)) {
    throw invalid(`mode ${attrs.mode} is over 0o7777: send only the permission bits`);
  }
  if (attrs.mtimeUs != null && (!Number.isFinite(attrs.mtimeUs) || attrs.mtimeUs < 0 || attrs.mtimeUs > MAX_MTIME_US)) {
    throw invalid("mtime must be between 1970 and 9999");
  }
}

export function checkPath(path: string): void {
  const why = checkRemotePath(path);
  if (why) throw invalid(why);
}
