import { MAX_PARTS } from "../../shared/rules/part-rules.js";
import { checkPathCharacters, checkRemotePath, MAX_PATH_BYTES } from "../../shared/rules/remote-path.js";
import { invalid } from "../errors.js";

/**
 * Caps on every string and repeated field of every request, documented on
 * the fields in proto/. Each is checked before any database or store work:
 * PostgreSQL refuses a NUL in text (a 500 before these checks), and an
 * unbounded string costs memory, index work and log space.
 */
export const MAX_PAGE_SIZE = 1000;
/** Part numbers per PresignParts call, and part reports per ReportParts call. */
export const MAX_PARTS_PER_CALL = 1000;
/** zstd frame sizes in one ReportParts call, all reports together: 1,000 parts of 64 chunks. */
export const MAX_STORED_SIZES_PER_CALL = 65_536;
/** The server makes 32 hex characters; this leaves room for a longer format later. */
export const MAX_UPLOAD_ID_LENGTH = 64;
/** S3 ETags are an MD5 in hex (32), the local store's a BLAKE3 in hex (64). */
export const MAX_ETAG_LENGTH = 128;
/** A page token names a path (ListFiles) or a revision (ListVersions), base64url-encoded. */
export const MAX_PAGE_TOKEN_LENGTH = Math.ceil((MAX_PATH_BYTES * 4) / 3);

export { MAX_PARTS };

/** At most `max` characters of `s`, quoted, for an error message: never echo unbounded input. */
export function quote(s: string, max = 40): string {
  const cut = [...s.slice(0, max * 2)].slice(0, max).join("");
  return JSON.stringify(cut) + (cut.length < s.length ? "…" : "");
}

/**
 * A ListFiles prefix: a path's beginning, so a path's length and characters.
 * It may end mid-segment or in "/", so the segment rules do not apply.
 */
export function checkPrefix(prefix: string): void {
  if (prefix.length > MAX_PATH_BYTES || Buffer.byteLength(prefix) > MAX_PATH_BYTES) throw invalid(`prefix is over ${MAX_PATH_BYTES} bytes`);
  const why = checkPathCharacters(prefix);
  if (why) throw invalid(`prefix ${why}`);
}

const UPLOAD_ID = /^[A-Za-z0-9_-]+$/;

export function checkUploadId(id: string): void {
  if (id.length === 0) throw invalid("upload_id is empty");
  if (id.length > MAX_UPLOAD_ID_LENGTH) throw invalid(`upload_id is over ${MAX_UPLOAD_ID_LENGTH} characters`);
  if (!UPLOAD_ID.test(id)) throw invalid(`upload_id ${quote(id)} is not one this server made`);
}

// RFC 9110 entity-tag characters. Empty passes: a store that sent no ETag
// gets its part checked (and refused) at complete, not its whole batch here.
const ETAG = /^[\x21-\x7e]*$/;

/** An ETag as the store answered it, without its quotes. */
export function checkEtag(etag: string, field: string): string {
  if (etag.length > MAX_ETAG_LENGTH + 2) throw invalid(`${field} is over ${MAX_ETAG_LENGTH} characters`);
  const bare = etag.replace(/"/g, "");
  if (bare.length > MAX_ETAG_LENGTH) throw invalid(`${field} is over ${MAX_ETAG_LENGTH} characters`);
  if (!ETAG.test(bare)) throw invalid(`${field} has characters an ETag cannot have`);
  return bare;
}

export function checkCount(n: number, max: number, field: string): void {
  if (n > max) throw invalid(`${field} has ${n} entries, over the ${max} maximum`);
}

/** 0 (or less) is the default, which is the maximum; more is capped. */
export function pageSize(requested: number): number {
  if (requested < 0) throw invalid("page_size must not be negative");
  return requested === 0 || requested > MAX_PAGE_SIZE ? MAX_PAGE_SIZE : requested;
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** The bytes inside a page token we made; anything else is InvalidArgument, never a query. */
function tokenBytes(token: string): Buffer {
  if (token.length > MAX_PAGE_TOKEN_LENGTH) throw invalid(`page_token is over ${MAX_PAGE_TOKEN_LENGTH} characters`);
  if (!BASE64URL.test(token)) throw invalid("page_token is not valid");
  const bytes = Buffer.from(token, "base64url");
  // Buffer decoding is lenient; only the canonical form is one of ours.
  if (bytes.toString("base64url") !== token) throw invalid("page_token is not valid");
  return bytes;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

export const pathToken = {
  encode: (path: string) => Buffer.from(path).toString("base64url"),
  /** The path the previous page ended at; "" for the first page. */
  decode(token: string): string {
    if (!token) return "";
    let path: string;
    try {
      path = utf8.decode(tokenBytes(token));
    } catch (err) {
      if (err instanceof TypeError) throw invalid("page_token is not valid");
      throw err;
    }
    if (checkRemotePath(path)) throw invalid("page_token is not valid");
    return path;
  },
};

export const revisionToken = {
  encode: (revision: number) => Buffer.from(`r${revision}`).toString("base64url"),
  /** The revision the previous page ended at; null for the first page. */
  decode(token: string): number | null {
    if (!token) return null;
    const m = /^r([1-9]\d{0,15})$/.exec(tokenBytes(token).toString("latin1"));
    const revision = m ? Number(m[1]) : NaN;
    if (!Number.isSafeInteger(revision)) throw invalid("page_token is not valid");
    return revision;
  },
};
