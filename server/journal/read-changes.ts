import { create } from "@bufbuild/protobuf";
import { timestampFromDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { sql } from "kysely";
import { ChangeOp, ChangeSchema, type Change } from "../../gen/drive/v1/feed_pb.js";
import { ContentHashKind, EntryKind, FileInfoSchema } from "../../gen/drive/v1/types_pb.js";
import { invalid } from "../errors.js";
import type { Db } from "../metadata/database.js";
import type { HashKind, JournalOp } from "../metadata/schema.js";
import { cursorReset, encodeCursor, type FeedPosition } from "./cursor.js";

/** One journal entry as the feed reads it. */
export interface JournalRow {
  seq: number;
  op: JournalOp;
  path: string;
  from_path: string | null;
  from_revision: number | null;
  revision: number;
  size: number;
  content_hash: Buffer | null;
  content_hash_kind: HashKind | null;
  kind: "file" | "folder";
  mode: number | null;
  mtime_us: number | null;
  created_at: Date;
}

export interface JournalPage {
  /** Entries after the position asked for, in seq order, at most the limit asked for. */
  rows: JournalRow[];
  /** namespaces.journal_seq in the same snapshot as the rows. */
  journalSeq: number;
}

/**
 * Entries of one namespace after `after`: one statement, so the rows and the
 * namespace's counters come from one snapshot, and a trim that commits
 * meanwhile cannot open an unseen gap. A position the journal cannot replay
 * from is CURSOR_RESET: before what the retention sweep kept (entries
 * after `after` are gone), or past the end.
 */
export async function readJournal(db: Db, namespaceId: number, after: number | null, opts: { limit: number; prefix?: string }): Promise<JournalPage> {
  const prefix = opts.prefix ?? "";
  const filter = prefix ? sql`and (starts_with(j.path, ${prefix}) or starts_with(coalesce(j.from_path, ''), ${prefix}))` : sql``;
  // null: from the oldest entry kept, whatever the sweep removed.
  const from = after === null ? sql`n.journal_trimmed_seq` : sql`${after}::bigint`;
  const { rows } = await sql<JournalRow & { journal_seq: number; journal_trimmed_seq: number; present: boolean }>`
    select n.journal_seq, n.journal_trimmed_seq, e.seq is not null as present, e.*
    from namespaces n
    left join lateral (
      select j.seq, j.op, j.path, j.from_path, j.from_revision, j.revision, j.size, j.content_hash, j.content_hash_kind,
             j.kind, j.mode, j.mtime_us, j.created_at
      from journal j
      where j.namespace_id = n.id and j.seq > ${from} ${filter}
      order by j.seq
      limit ${opts.limit}
    ) e on true
    where n.id = ${namespaceId}
    order by e.seq`.execute(db);
  const head = rows[0];
  if (!head) throw invalid("the cursor names a namespace that does not exist");
  if (after !== null && after > head.journal_seq) throw cursorReset("it points past the end of the journal; was the database restored?");
  if (after !== null && after < head.journal_trimmed_seq) throw cursorReset("it is older than the journal keeps; see --journal-retention");
  return {
    rows: rows.filter((r) => r.present).map(({ journal_seq: _s, journal_trimmed_seq: _t, present: _p, ...row }) => row as JournalRow),
    journalSeq: head.journal_seq,
  };
}

export interface ChangesPage {
  changes: Change[];
  /** After the last change returned, or past every entry the prefix skipped. */
  position: FeedPosition;
  hasMore: boolean;
}

/**
 * ListChanges: up to `limit` changes after `position` over the namespaces
 * the caller sees (only `namespaceId`, the home, today). A cursor naming a
 * namespace outside them is InvalidArgument.
 */
export async function readChanges(
  db: Db,
  opts: { userId: number; namespaceId: number; position: FeedPosition | null; limit: number; prefix: string },
): Promise<ChangesPage> {
  const after = startOf(opts.position, opts.namespaceId);
  const page = await readJournal(db, opts.namespaceId, after, { limit: opts.limit + 1, prefix: opts.prefix });
  const hasMore = page.rows.length > opts.limit;
  const rows = page.rows.slice(0, opts.limit);
  const toChange = changeMapper(opts.userId, opts.namespaceId);
  const changes = rows.map(toChange);
  const seq = hasMore ? rows[rows.length - 1]!.seq : page.journalSeq;
  return { changes, hasMore, position: { userId: opts.userId, seqs: new Map([[opts.namespaceId, seq]]) } };
}

/** Where a position stands in the namespace; null when it does not name it (from the oldest kept). */
export function startOf(position: FeedPosition | null, namespaceId: number): number | null {
  if (!position) return null;
  for (const id of position.seqs.keys()) if (id !== namespaceId) throw invalid("the cursor names a namespace you cannot see");
  return position.seqs.get(namespaceId) ?? null;
}

const OPS: Record<JournalOp, ChangeOp> = { put: ChangeOp.PUT, delete: ChangeOp.DELETE, move: ChangeOp.MOVE, attrs: ChangeOp.ATTRS };

/** Maps rows to Changes, each with the cursor just after it. */
export function changeMapper(userId: number, namespaceId: number): (row: JournalRow) => Change {
  return (row) =>
    create(ChangeSchema, {
      op: OPS[row.op] ?? ChangeOp.UNSPECIFIED,
      file: create(FileInfoSchema, {
        path: row.path,
        size: BigInt(row.size),
        contentHash: row.content_hash ?? new Uint8Array(),
        revision: BigInt(row.revision),
        modifiedAt: timestampFromDate(row.created_at),
        deleted: row.op === "delete",
        contentHashKind: row.content_hash_kind ?? ContentHashKind.UNSPECIFIED,
        kind: row.kind === "folder" ? EntryKind.FOLDER : EntryKind.FILE,
        mode: row.mode ?? 0,
        mtime: row.mtime_us === null ? undefined : timestampFromMicros(row.mtime_us),
      }),
      fromPath: row.from_path ?? "",
      fromRevision: BigInt(row.from_revision ?? 0),
      committedAt: timestampFromDate(row.created_at),
      cursor: encodeCursor({ userId, seqs: new Map([[namespaceId, row.seq]]) }),
    });
}

function timestampFromMicros(us: number) {
  const t = timestampFromMs(Math.floor(us / 1000));
  t.nanos += (((us % 1000) + 1000) % 1000) * 1000; // floor above: the rest is never negative
  return t;
}
