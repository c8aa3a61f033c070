import { sql, type Insertable, type Transaction } from "kysely";
import type { Database, JournalTable } from "../metadata/schema.js";

export type JournalEntry = Omit<Insertable<JournalTable>, "seq" | "created_at">;

/**
 * The channel every journal append notifies, with the namespace id as the
 * payload. PostgreSQL delivers it at commit (so never for a rollback) and
 * folds repeats within one transaction; it only wakes readers, who re-read
 * the journal from their cursors (server/notify/).
 */
export const JOURNAL_CHANNEL = "drive_journal";

/**
 * Appends one entry to a namespace's journal inside the writing transaction.
 * The caller must hold the namespace row's lock (lockNamespace): the
 * sequence number comes from that row, so numbers commit in the order they
 * are handed out and a reader never sees a gap that fills in later.
 */
export async function appendEntry(tx: Transaction<Database>, entry: JournalEntry): Promise<number> {
  const { journal_seq: seq } = await tx
    .updateTable("namespaces")
    .set((eb) => ({ journal_seq: eb("journal_seq", "+", 1) }))
    .where("id", "=", entry.namespace_id)
    .returning("journal_seq")
    .executeTakeFirstOrThrow();
  await tx.insertInto("journal").values({ ...entry, seq }).execute();
  await sql`select pg_notify(${JOURNAL_CHANNEL}, ${String(entry.namespace_id)})`.execute(tx);
  return seq;
}

/** Takes the namespace's write lock for the rest of the transaction. */
export async function lockNamespace(tx: Transaction<Database>, namespaceId: number): Promise<void> {
  await tx.selectFrom("namespaces").select("id").where("id", "=", namespaceId).forUpdate().executeTakeFirstOrThrow();
}
