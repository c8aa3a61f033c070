/** What a Range header asks of an object of a known size. */
export type RangeRequest =
  | { kind: "full" }
  | { kind: "partial"; start: number; end: number } // end exclusive
  | { kind: "unsatisfiable" };

const SINGLE_RANGE = /^bytes=(\d*)-(\d*)$/;

/**
 * Parses `bytes=a-b`, `bytes=a-` and `bytes=-n`. As RFC 9110 allows (and S3
 * does), a header that is malformed or asks for several ranges is ignored and
 * the whole object is served.
 */
export function parseByteRange(header: string | undefined, size: number): RangeRequest {
  const m = header === undefined ? null : SINGLE_RANGE.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return { kind: "full" };
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return { kind: "unsatisfiable" };
    return { kind: "partial", start: Math.max(0, size - suffix), end: size };
  }
  const start = Number(m[1]);
  const last = m[2] === "" ? Infinity : Number(m[2]);
  if (last < start) return { kind: "full" };
  if (start >= size) return { kind: "unsatisfiable" };
  return { kind: "partial", start, end: Math.min(last + 1, size) };
}
