/**
 * Remote paths are relative, slash-separated and normalised. One rule for
 * the whole system: the server refuses anything else, and a client that
 * writes what the server names into a local tree relies on it.
 */
const MAX_PATH_BYTES = 4096;
const MAX_SEGMENT_BYTES = 255;

/** Returns why `path` is not a valid remote path, or null when it is. */
export function checkRemotePath(path: string): string | null {
  if (path.length === 0) return "path is empty";
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) return `path is over ${MAX_PATH_BYTES} bytes`;
  // C0 controls, DEL and C1 controls: NUL truncates paths in C APIs, the rest forge terminal output.
  if (/[\u0000-\u001f\u007f-\u009f]/.test(path)) return "path contains a control character";
  if (path.startsWith("/")) return "path must be relative (no leading slash)";
  if (path.includes("\\")) return "path must use forward slashes";
  for (const segment of path.split("/")) {
    if (segment === "") return "path has an empty segment";
    if (segment === "." || segment === "..") return `path has a "${segment}" segment`;
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) return `path segment is over ${MAX_SEGMENT_BYTES} bytes`;
  }
  if (path.normalize("NFC") !== path) return "path is not in Unicode NFC form";
  return null;
}
