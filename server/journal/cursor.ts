import { DriveError, invalid } from "../errors.js";
import { ErrorReason } from "../../gen/drive/v1/errors_pb.js";

/** Cursors are at most this many characters (proto/drive/v1/feed.proto). */
export const MAX_CURSOR_LENGTH = 1024;

/** Format version, the record's first byte; a later format takes the next number. */
const VERSION = 1;

/**
 * Where a reader stands in the feed: for each namespace it follows, the
 * last journal seq it has seen. A map, although only the home namespace
 * exists today, so a cursor can cover shared folders later.
 */
export interface FeedPosition {
  readonly userId: number;
  /** namespace id → last seq seen. */
  readonly seqs: ReadonlyMap<number, number>;
}

/**
 * A cursor on the wire: base64url of [version, varint user id, varint
 * count, then count × (varint namespace id, varint seq)], namespaces in
 * ascending id order, so one position has one spelling.
 */
export function encodeCursor(pos: FeedPosition): string {
  const bytes: number[] = [VERSION];
  varint(bytes, pos.userId);
  const ids = [...pos.seqs.keys()].sort((a, b) => a - b);
  varint(bytes, ids.length);
  for (const id of ids) {
    varint(bytes, id);
    varint(bytes, pos.seqs.get(id)!);
  }
  return Buffer.from(bytes).toString("base64url");
}

/** The cursor for one namespace at `seq`: what the home namespace's feed hands out. */
export const cursorAt = (userId: number, namespaceId: number, seq: number) => encodeCursor({ userId, seqs: new Map([[namespaceId, seq]]) });

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Parses a cursor the server made for `userId`. Empty is null (from the
 * oldest entry kept). Anything else that is not one of ours, or is another
 * user's, is InvalidArgument and never reaches a query.
 */
export function decodeCursor(text: string, userId: number, field = "cursor"): FeedPosition | null {
  if (text === "") return null;
  const bad = () => invalid(`${field} is not a cursor this server made`);
  if (text.length > MAX_CURSOR_LENGTH) throw invalid(`${field} is over ${MAX_CURSOR_LENGTH} characters`);
  if (!BASE64URL.test(text)) throw bad();
  const bytes = Buffer.from(text, "base64url");
  if (bytes.toString("base64url") !== text) throw bad();
  const r = { at: 1 };
  if (bytes[0] !== VERSION) throw bad();
  const owner = readVarint(bytes, r);
  const count = readVarint(bytes, r);
  if (owner === null || count === null || count > 64) throw bad();
  const seqs = new Map<number, number>();
  let last = 0;
  for (let i = 0; i < count; i++) {
    const id = readVarint(bytes, r);
    const seq = readVarint(bytes, r);
    if (id === null || seq === null || id <= last) throw bad();
    seqs.set(id, seq);
    last = id;
  }
  if (r.at !== bytes.length) throw bad();
  if (owner !== userId) throw invalid(`${field} belongs to another user`);
  return { userId, seqs };
}

/**
 * The journal can no longer replay from this cursor: trimmed past it, or it
 * points past the end (the database was restored from a backup).
 */
export function cursorReset(why: string): DriveError {
  return new DriveError("failed_precondition", `the cursor can no longer be replayed (${why}): list again with ListFiles and follow its cursor`, {
    info: { reason: ErrorReason.CURSOR_RESET },
  });
}

function varint(out: number[], n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`cannot encode ${n} in a cursor`);
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
}

/** A canonical (shortest-form) varint of at most 2^53 - 1, or null. */
function readVarint(bytes: Buffer, r: { at: number }): number | null {
  let n = 0;
  let scale = 1;
  for (let i = 0; i < 8; i++) {
    const b = bytes[r.at++];
    if (b === undefined) return null;
    n += (b & 0x7f) * scale;
    if (!(b & 0x80)) {
      if (i > 0 && b === 0) return null; // a longer spelling of a smaller number
      return Number.isSafeInteger(n) ? n : null;
    }
    scale *= 0x80;
  }
  return null;
}
