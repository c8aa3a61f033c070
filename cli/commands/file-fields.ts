import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { FileInfo } from "../../gen/drive/v1/types_pb.js";
import { ContentHashKind } from "../../gen/drive/v1/types_pb.js";
import { hex } from "../../shared/rules/content-hash.js";

/**
 * How a content hash was computed, as --json and the listings name it:
 * "blake3" is what `b3sum` prints for the file; "chunk-list" is drive's
 * hash before content-defined chunking (a hash of the chunk list, which no
 * other tool computes). A live file from a server that predates kinds has
 * the chunk-list kind; a deletion has none.
 */
export function hashKindName(kind: ContentHashKind, hash: Uint8Array): "blake3" | "chunk-list" | null {
  if (hash.length === 0) return null;
  return kind === ContentHashKind.BLAKE3 ? "blake3" : "chunk-list";
}

/** One file as --json prints it in ls and stat. */
export function fileFields(f: FileInfo): Record<string, unknown> {
  return {
    type: "file",
    path: f.path,
    size: f.size,
    revision: f.revision,
    modified_at: modifiedAt(f).toISOString(),
    content_hash: hex(f.contentHash),
    content_hash_kind: hashKindName(f.contentHashKind, f.contentHash),
  };
}

export function modifiedAt(f: FileInfo): Date {
  return f.modifiedAt ? timestampDate(f.modifiedAt) : new Date(0);
}

/** "2026-01-31 12:34:56", UTC. */
export function shortTime(d: Date): string {
  return d.toISOString().replace("T", " ").slice(0, 19);
}
