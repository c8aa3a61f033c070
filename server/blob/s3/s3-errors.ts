import { isTransientCode } from "../../../shared/io/transient-errors.js";
import { BlobError, type BlobErrorCode } from "../errors.js";

/** S3 error codes, as AWS, MinIO and Ceph RGW name them, by what a caller can do about them. */
const NOT_FOUND = new Set(["NoSuchKey", "NoSuchUpload", "NotFound", "NoSuchBucket"]);
const INVALID = new Set([
  "EntityTooSmall",
  "EntityTooLarge",
  "InvalidPart",
  "InvalidPartOrder",
  "InvalidRange",
  "InvalidRequest",
  "InvalidArgument",
  "MalformedXML",
  "InvalidObjectName",
  "KeyTooLongError",
]);
const RETRYABLE = new Set([
  "SlowDown",
  "ServiceUnavailable",
  "InternalError",
  "RequestTimeout",
  "RequestTimeTooSkewed",
  "OperationAborted",
  "XMinioServerNotInitialized",
]);

/**
 * The S3 error code of a minio-js failure ("NoSuchKey"), or of a socket error ("ECONNREFUSED").
 * With its retries off, minio-js answers a 408, 429 or 5xx (RGW's 503 SlowDown, a proxy's 502)
 * with a bare "Retryable HTTP status: 503" and no code; that is the store being busy, not the request.
 */
export function s3Code(err: unknown): string {
  const code = typeof err === "object" && err !== null ? (err as { code?: unknown }).code : undefined;
  if (typeof code === "string" && code) return code;
  return /Retryable HTTP status: \d+/.test(err instanceof Error ? err.message : "") ? "ServiceUnavailable" : "";
}

export function classify(code: string): BlobErrorCode {
  if (NOT_FOUND.has(code)) return "not_found";
  if (INVALID.has(code)) return "invalid";
  // Socket errors (the store is down, the connection broke) come from the one shared list.
  if (RETRYABLE.has(code) || isTransientCode(code)) return "retryable";
  return "permanent";
}

/** Wraps any failure of a minio-js call in a BlobError that keeps the store's own words. */
export function toBlobError(err: unknown, op: string): BlobError {
  if (err instanceof BlobError) return err;
  const code = s3Code(err);
  const message = err instanceof Error ? err.message : String(err);
  return new BlobError(classify(code), `s3 ${op}: ${code ? `${code}: ` : ""}${message}`, { cause: err });
}
