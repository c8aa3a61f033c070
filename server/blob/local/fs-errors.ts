import { BlobError } from "../errors.js";

// Errors a later attempt may not hit: the disk or the process is full or busy.
const RETRYABLE = new Set(["ENOSPC", "EMFILE", "ENFILE", "EBUSY", "EAGAIN"]);

/** Classifies a filesystem error once, so callers only ever see BlobError. */
export function toBlobError(err: unknown, what: string): BlobError {
  if (err instanceof BlobError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT") return new BlobError("not_found", `${what}: not found`, { cause: err });
  if (code !== undefined && RETRYABLE.has(code)) {
    return new BlobError("retryable", `${what}: ${code}`, { cause: err });
  }
  return new BlobError("permanent", `${what}: ${code ?? String(err)}`, { cause: err });
}

export function isErrno(err: unknown, ...codes: string[]): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && codes.includes(code);
}

/** For .catch(): a missing file becomes undefined, anything else is rethrown. */
export function ignoreMissing(err: unknown): undefined {
  if (isErrno(err, "ENOENT")) return undefined;
  throw err;
}
