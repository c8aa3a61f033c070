import { checkRemotePath, MAX_PATH_BYTES } from "../../shared/rules/remote-path.js";
import { decodeCursor, encodeCursor, MAX_CURSOR_LENGTH, type FeedPosition } from "../journal/cursor.js";
import { invalid } from "../errors.js";

/**
 * A ListFiles page token: base64url of the last path listed, a NUL (no path
 * holds one), and the listing's feed cursor in binary, so every page repeats
 * the cursor of the first page's snapshot. A token of the old form, the path
 * alone, still reads: its pages then carry a cursor taken when they are read.
 */
export const MAX_LIST_TOKEN_LENGTH = Math.ceil(((MAX_PATH_BYTES + 1 + (MAX_CURSOR_LENGTH * 3) / 4) * 4) / 3);

const BASE64URL = /^[A-Za-z0-9_-]+$/;
const utf8 = new TextDecoder("utf-8", { fatal: true });

export function encodeListToken(path: string, position: FeedPosition): string {
  return Buffer.concat([Buffer.from(path), Buffer.of(0), Buffer.from(encodeCursor(position), "base64url")]).toString("base64url");
}

/** The path the previous page ended at ("" for the first page) and the listing's position (null: take one now). */
export function decodeListToken(token: string, userId: number): { after: string; position: FeedPosition | null } {
  if (!token) return { after: "", position: null };
  const bad = () => invalid("page_token is not valid");
  if (token.length > MAX_LIST_TOKEN_LENGTH) throw invalid(`page_token is over ${MAX_LIST_TOKEN_LENGTH} characters`);
  if (!BASE64URL.test(token)) throw bad();
  const bytes = Buffer.from(token, "base64url");
  // Buffer decoding is lenient; only the canonical form is one of ours.
  if (bytes.toString("base64url") !== token) throw bad();
  const nul = bytes.indexOf(0);
  let after: string;
  try {
    after = utf8.decode(nul < 0 ? bytes : bytes.subarray(0, nul));
  } catch {
    throw bad();
  }
  if (checkRemotePath(after)) throw bad();
  if (nul < 0) return { after, position: null };
  const cursor = bytes.subarray(nul + 1).toString("base64url");
  if (!cursor) throw bad();
  return { after, position: decodeCursor(cursor, userId, "page_token") };
}
