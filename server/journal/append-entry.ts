import type { Transaction } from "kysely";
import type { Database, JournalTable } from "../metadata/schema.js";

export type JournalEntry = Omit<JournalTable, "seq" | "created_at">;

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
  return seq;
}

/** Takes the namespace's write lock for the rest of the transaction. */
export async function lockNamespace(tx: Transaction<Database>, namespaceId: number): Promise<void> {
  await tx.selectFrom("namespaces").select("id").where("id", "=", namespaceId).forUpdate().executeTakeFirstOrThrow();
}
