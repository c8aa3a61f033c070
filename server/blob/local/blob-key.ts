import { BlobError } from "../errors.js";

const KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9/._-]*$/;
// S3's limit. Each segment also becomes a directory name, so it must stay
// under NAME_MAX (255) once the object suffix is added.
const MAX_KEY_LENGTH = 1024;
const MAX_SEGMENT_LENGTH = 240;

/**
 * Throws BlobError "invalid" unless `key` is safe to use as a path below the
 * store root. "." and ".." segments and "//" are refused because path.join
 * would fold them, making two keys share one directory (or escape the root).
 */
export function checkKey(key: string): void {
  const ok =
    typeof key === "string" &&
    key.length <= MAX_KEY_LENGTH &&
    KEY_PATTERN.test(key) &&
    !key.includes("//") &&
    key.split("/").every((s) => s !== "." && s !== ".." && s.length <= MAX_SEGMENT_LENGTH);
  if (!ok) throw new BlobError("invalid", `invalid key ${JSON.stringify(key)}`);
}
