import { sql, type Insertable, type Transaction } from "kysely";
import type { Database, JournalTable } from "../metadata/schema.js";
import { inBatches } from "../files/in-batches.js";

export type JournalEntry = Omit<Insertable<JournalTable>, "seq" | "created_at">;

/**
 * The channel every journal append notifies, with the namespace id as the
 * payload. PostgreSQL delivers it at commit (so never for a rollback) and
 * folds repeats within one transaction; it only wakes readers, who re-read
 * the journal from their cursors (server/notify/).
 */
export const JOURNAL_CHANNEL = "drive_journal";

export type BatchEntry = Omit<JournalEntry, "namespace_id">;

/**
 * Appends entries to a namespace's journal inside the writing transaction,
 * in order, with one counter bump and one notification. The caller must hold
 * the namespace row's lock (lockNamespace): the sequence numbers come from
 * that row, so they commit in the order they are handed out and a reader
 * never sees a gap that fills in later. Returns the last seq taken; call it
 * with at least one entry.
 */
export async function appendEntries(tx: Transaction<Database>, namespaceId: number, entries: readonly BatchEntry[]): Promise<number> {
  const { journal_seq: last } = await tx
    .updateTable("namespaces")
    .set((eb) => ({ journal_seq: eb("journal_seq", "+", entries.length) }))
    .where("id", "=", namespaceId)
    .returning("journal_seq")
    .executeTakeFirstOrThrow();
  let seq = last - entries.length;
  for (const batch of inBatches(entries, 2000)) {
    await tx
      .insertInto("journal")
      .values(batch.map((e) => ({ ...e, namespace_id: namespaceId, seq: ++seq })))
      .execute();
  }
  await sql`select pg_notify(${JOURNAL_CHANNEL}, ${String(namespaceId)})`.execute(tx);
  return last;
}

/** appendEntries for one entry: its seq. */
export async function appendEntry(tx: Transaction<Database>, entry: JournalEntry): Promise<number> {
  const { namespace_id, ...rest } = entry;
  return appendEntries(tx, namespace_id, [rest]);
}

/** Takes the namespace's write lock for the rest of the transaction. */
export async function lockNamespace(tx: Transaction<Database>, namespaceId: number): Promise<void> {
  await tx.selectFrom("namespaces").select("id").where("id", "=", namespaceId).forUpdate().executeTakeFirstOrThrow();
}
