/**
 * Remote paths are relative, slash-separated and normalised. One rule for
 * the whole system: the server refuses anything else, and a client that
 * writes what the server names into a local tree relies on it.
 */
export const MAX_PATH_BYTES = 4096;
export const MAX_SEGMENT_BYTES = 255;

// C0 controls, DEL and C1 controls: NUL truncates paths in C APIs (and
// PostgreSQL refuses it in text), the rest forge terminal output.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// With the u flag, a surrogate pair reads as one code point: this matches only lone halves.
const LONE_SURROGATE = /[\ud800-\udfff]/u;

/**
 * Why `text` has characters no path may hold, or null: control characters,
 * and lone surrogates (from JSON's \ud800 escapes, or invalid UTF-8 in
 * binary protobuf: see rpc/utf8-strings.ts), which have no UTF-8 form and
 * would be stored as U+FFFD, a name other than the one asked for.
 */
export function checkPathCharacters(text: string): string | null {
  if (CONTROL.test(text)) return "contains a control character";
  if (LONE_SURROGATE.test(text)) return "is not valid Unicode (invalid UTF-8 or a lone surrogate)";
  return null;
}

/** Returns why `path` is not a valid remote path, or null when it is. */
export function checkRemotePath(path: string): string | null {
  if (path.length === 0) return "path is empty";
  // Cheap before the byte count: a UTF-16 unit is at least one UTF-8 byte.
  if (path.length > MAX_PATH_BYTES || Buffer.byteLength(path) > MAX_PATH_BYTES) return `path is over ${MAX_PATH_BYTES} bytes`;
  const chars = checkPathCharacters(path);
  if (chars) return `path ${chars}`;
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
