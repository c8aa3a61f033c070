import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ContentHashKind, FileInfoSchema, type FileInfo } from "../../gen/drive/v1/types_pb.js";
import { invalid } from "../errors.js";
import type { FileRow } from "../metadata/schema.js";

export function fileInfo(row: Pick<FileRow, "path" | "size" | "content_hash" | "content_hash_kind" | "revision" | "modified_at" | "deleted">): FileInfo {
  return create(FileInfoSchema, {
    path: row.path,
    size: BigInt(row.size),
    contentHash: row.content_hash ?? new Uint8Array(),
    revision: BigInt(row.revision),
    modifiedAt: timestampFromDate(row.modified_at),
    deleted: row.deleted,
    contentHashKind: row.content_hash_kind ?? ContentHashKind.UNSPECIFIED,
  });
}

/** int64 fields arrive as bigint; everything we accept fits a double exactly. */
export function toNumber(value: bigint, field: string): number {
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(`${field} is out of range`);
  return Number(value);
}
