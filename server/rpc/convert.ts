import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { TimestampSchema, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { GetDownloadResponseSchema } from "../../gen/drive/v1/file_pb.js";
import { ContentHashKind, EntryKind, FileInfoSchema, VersionSchema, type FileInfo, type Version } from "../../gen/drive/v1/types_pb.js";
import { invalid } from "../errors.js";
import type { DownloadableVersion } from "../files/file-queries.js";
import type { EntryKindValue, FileRow, HashKind } from "../metadata/schema.js";

type Attributes = { kind: EntryKindValue; mode: number | null; mtime_us: number | null };

export function fileInfo(
  row: Pick<FileRow, "path" | "size" | "content_hash" | "content_hash_kind" | "revision" | "modified_at" | "deleted"> & Partial<Attributes>,
): FileInfo {
  return create(FileInfoSchema, {
    path: row.path,
    size: BigInt(row.size),
    contentHash: row.content_hash ?? new Uint8Array(),
    revision: BigInt(row.revision),
    modifiedAt: timestampFromDate(row.modified_at),
    deleted: row.deleted,
    contentHashKind: row.content_hash_kind ?? ContentHashKind.UNSPECIFIED,
    ...attributes(row),
  });
}

export interface VersionRow extends Partial<Attributes> {
  revision: number;
  deleted: boolean;
  size: number;
  content_hash: Buffer | null;
  content_hash_kind: HashKind | null;
  created_at: Date;
  author: string;
}

export function versionInfo(v: VersionRow): Version {
  return create(VersionSchema, {
    revision: BigInt(v.revision),
    size: BigInt(v.size),
    contentHash: v.content_hash ?? new Uint8Array(),
    createdAt: timestampFromDate(v.created_at),
    deleted: v.deleted,
    author: v.author,
    contentHashKind: v.content_hash_kind ?? ContentHashKind.UNSPECIFIED,
    ...attributes(v),
  });
}

function attributes(row: Partial<Attributes>): { kind: EntryKind; mode: number; mtime?: Timestamp } {
  return {
    kind: row.kind === "folder" ? EntryKind.FOLDER : EntryKind.FILE,
    mode: row.mode ?? 0,
    ...(row.mtime_us === null || row.mtime_us === undefined ? {} : { mtime: timestampFromMicros(row.mtime_us) }),
  };
}

export function timestampFromMicros(us: number): Timestamp {
  const seconds = Math.floor(us / 1e6);
  return create(TimestampSchema, { seconds: BigInt(seconds), nanos: (us - seconds * 1e6) * 1000 });
}

/** 1970-01-01 up to the end of 9999, as CreateUploadRequest.mtime says. */
const MAX_MTIME_SECONDS = 253402300799n;

/**
 * A request's mtime in µs since the epoch; null when unset. Sub-µs nanos are
 * dropped. Past 2255 a double no longer holds every µs: such a time is kept
 * to within a few µs.
 */
export function mtimeMicros(ts: Timestamp | undefined, field = "mtime"): number | null {
  if (!ts) return null;
  if (ts.seconds < 0n || ts.seconds > MAX_MTIME_SECONDS || ts.nanos < 0 || ts.nanos > 999_999_999) {
    throw invalid(`${field} must be between 1970 and 9999`);
  }
  return Number(ts.seconds) * 1e6 + Math.floor(ts.nanos / 1000);
}

/** A request's mode: the permission bits, 0 for not said. */
export function modeOf(mode: number, field = "mode"): number | null {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw invalid(`${field} ${mode} is over 0o7777: send only the permission bits`);
  return mode === 0 ? null : mode;
}

/** What GetDownload answers, from the version found, its first chunk page and a signed URL. */
export function downloadResponse(
  found: DownloadableVersion,
  chunks: ReadonlyArray<{ size: number; hash: Buffer; plain_offset: number; stored_offset: number; stored_size: number; codec: number }>,
  url: string,
  urlTtlSeconds: number,
): MessageInitShape<typeof GetDownloadResponseSchema> {
  return {
    file: fileInfo(found.file),
    revision: BigInt(found.file.revision),
    url,
    urlExpiresInSeconds: BigInt(urlTtlSeconds),
    chunks: chunks.map((c) => ({
      size: BigInt(c.size),
      hash: c.hash,
      offset: BigInt(c.plain_offset),
      storedOffset: BigInt(c.stored_offset),
      storedSize: BigInt(c.stored_size),
      codec: c.codec,
    })),
    chunkCount: BigInt(found.chunkCount),
    storedSize: BigInt(found.storedSize),
  };
}

/** int64 fields arrive as bigint; everything we accept fits a double exactly. */
export function toNumber(value: bigint, field: string): number {
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(`${field} is out of range`);
  return Number(value);
}
