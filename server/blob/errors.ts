/**
 * Why a BlobStore call failed, in the few classes a caller acts on:
 * - not_found: the object or upload does not exist (or no longer does);
 * - invalid: the request can never succeed as made (bad key, part too small);
 * - retryable: the store is busy or unreachable, and the same call may work later;
 * - permanent: anything else.
 */
export type BlobErrorCode = "not_found" | "invalid" | "retryable" | "permanent";

export class BlobError extends Error {
  override readonly name = "BlobError";
  constructor(
    readonly code: BlobErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isBlobNotFound(err: unknown): boolean {
  return err instanceof BlobError && err.code === "not_found";
}
