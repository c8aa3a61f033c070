import { Blake3Hasher } from "@napi-rs/blake-hash";
import { ContentHashKind, EntryKind } from "../../gen/drive/v1/types_pb.js";
import type { PutItem } from "../../gen/drive/v1/tree_pb.js";
import { HASH_LENGTH, type ChunkDigest } from "../../shared/rules/content-hash.js";
import { invalid } from "../errors.js";
import { modeOf, mtimeMicros, toNumber } from "../rpc/convert.js";
import { checkPage } from "../uploads/chunk-pages.js";
import { checkPath } from "../uploads/validate-upload.js";
import { MAX_PUT_CHUNKS, SMALL_FILE_MAX } from "./tree-limits.js";

/** A PutItem as checked: what BeginPuts commits or opens a put for. */
export interface PutSpec {
  path: string;
  kind: "file" | "folder";
  size: number;
  /** BLAKE3 of the bytes; null for a folder. */
  contentHash: Buffer | null;
  chunks: ChunkDigest[];
  baseRevision: number | null;
  mode: number | null;
  mtimeUs: number | null;
}

const EMPTY_HASH = new Blake3Hasher().digestBuffer();

/** Checks one item; throws the DriveError that becomes its ItemError. */
export function putSpec(item: PutItem): PutSpec {
  checkPath(item.path);
  const common = {
    path: item.path,
    baseRevision: item.baseRevision === undefined ? null : toNumber(item.baseRevision, "base_revision"),
    mode: modeOf(item.mode),
    mtimeUs: mtimeMicros(item.mtime),
  };
  if (item.kind === EntryKind.FOLDER) {
    if (item.size !== 0n || item.contentHash.length || item.chunks.length) throw invalid("a folder entry has size 0, no content hash and no chunks");
    return { ...common, kind: "folder", size: 0, contentHash: null, chunks: [] };
  }
  if (item.kind !== EntryKind.FILE) throw invalid("kind must be ENTRY_KIND_FILE or ENTRY_KIND_FOLDER");
  if (item.contentHashKind !== ContentHashKind.BLAKE3) throw invalid("content_hash_kind must be CONTENT_HASH_KIND_BLAKE3, the BLAKE3 of the file's bytes");
  const size = toNumber(item.size, "size");
  if (size > SMALL_FILE_MAX) throw invalid(`size ${size} is over small_file_max (${SMALL_FILE_MAX} bytes): push it with UploadService`);
  if (item.contentHash.length !== HASH_LENGTH) throw invalid(`content_hash must be ${HASH_LENGTH} bytes`);
  const contentHash = Buffer.from(item.contentHash);
  const chunks = item.chunks.map((c, i) => ({ size: toNumber(c.size, `chunks[${i}] size`), hash: Buffer.from(c.hash) }));
  if (size === 0 && !contentHash.equals(EMPTY_HASH)) throw invalid("content_hash of an empty file must be the BLAKE3 of no bytes");
  if (size > 0 && chunks.length === 0) throw invalid("a file that is not empty needs its chunks");
  checkPage(chunks, { first: 0, chunkCount: chunks.length, size, bytesBefore: 0 });
  if (chunks.length === 1 && !contentHash.equals(chunks[0]!.hash)) throw invalid("content_hash of a file of one chunk must be that chunk's hash");
  return { ...common, kind: "file", size, contentHash, chunks };
}

/** The request-wide caps of one item, checked for every item before any work. */
export function checkItemCaps(item: PutItem, i: number): void {
  if (item.chunks.length > MAX_PUT_CHUNKS) throw invalid(`items[${i}].chunks has ${item.chunks.length} entries, over the ${MAX_PUT_CHUNKS} maximum`);
}
