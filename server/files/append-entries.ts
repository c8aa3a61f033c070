import { sql, type Transaction } from "kysely";
import { JOURNAL_CHANNEL, type JournalEntry } from "../journal/append-entry.js";
import type { Database } from "../metadata/schema.js";
import { inBatches } from "./in-batches.js";

export type BatchEntry = Omit<JournalEntry, "namespace_id">;

/**
 * appendEntry (server/journal/append-entry.ts) for many entries at once:
 * the namespace's counter is bumped once by their number and the entries
 * take the numbers in order, with one notification. The same rule holds:
 * the caller holds the namespace lock (lockNamespace), so the numbers commit
 * in the order they were handed out and no reader sees a gap fill in later.
 */
export async function appendEntries(tx: Transaction<Database>, namespaceId: number, entries: readonly BatchEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const { journal_seq: last } = await tx
    .updateTable("namespaces")
    .set((eb) => ({ journal_seq: eb("journal_seq", "+", entries.length) }))
    .where("id", "=", namespaceId)
    .returning("journal_seq")
    .executeTakeFirstOrThrow();
  const first = last - entries.length + 1;
  let i = 0;
  for (const batch of inBatches(entries, 2000)) {
    await tx
      .insertInto("journal")
      .values(batch.map((e) => ({ ...e, namespace_id: namespaceId, seq: first + i++ })))
      .execute();
  }
  await sql`select pg_notify(${JOURNAL_CHANNEL}, ${String(namespaceId)})`.execute(tx);
}
