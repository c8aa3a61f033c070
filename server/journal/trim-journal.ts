import { sql } from "kysely";
import type { Logger } from "../log.js";
import type { Db } from "../metadata/database.js";
import { lockNamespace } from "./append-entry.js";

/** Entries one namespace's transaction removes at most, so a trim never holds the namespace's lock for long. */
const ROWS_PER_PASS = 10_000;

/**
 * Removes journal entries older than the retention, and raises each
 * namespace's journal_trimmed_seq in the same transaction, under the
 * namespace's lock: a reader that reads both in one snapshot
 * (readJournal) sees a cursor before the trim answered CURSOR_RESET, never
 * a silent gap. Instances sharing a database may run it at once: the lock
 * makes them take turns per namespace, and a second pass finds nothing
 * left. created_at follows seq only roughly (it is the writer's start
 * time), so an entry a little younger than the cutoff may go with the
 * older ones before it. Returns how many entries it removed.
 */
export async function trimJournal(db: Db, retentionMs: number, now = new Date()): Promise<number> {
  const cutoff = new Date(now.getTime() - retentionMs);
  const namespaces = await db.selectFrom("journal").select("namespace_id").distinct().where("created_at", "<", cutoff).execute();
  let removed = 0;
  for (const { namespace_id: id } of namespaces) {
    for (;;) {
      const n = await db.transaction().execute(async (tx) => {
        await lockNamespace(tx, id);
        const { rows } = await sql<{ upto: number | null }>`
          select max(seq) as upto from (
            select seq from journal where namespace_id = ${id} and created_at < ${cutoff} order by seq limit ${ROWS_PER_PASS}
          ) old`.execute(tx);
        const upto = rows[0]?.upto;
        if (upto === null || upto === undefined) return 0;
        const gone = await tx.deleteFrom("journal").where("namespace_id", "=", id).where("seq", "<=", upto).executeTakeFirst();
        await tx
          .updateTable("namespaces")
          .set({ journal_trimmed_seq: sql<number>`greatest(journal_trimmed_seq, ${upto}::bigint)` })
          .where("id", "=", id)
          .execute();
        return Number(gone.numDeletedRows);
      });
      removed += n;
      if (n < ROWS_PER_PASS) break;
    }
  }
  return removed;
}

/** Runs trimJournal now and then (a tenth of the retention, between 1 s and an hour) until the signal aborts. */
export function startJournalTrim(db: Db, log: Logger, retentionMs: number, signal: AbortSignal): void {
  const every = Math.max(1000, Math.min(retentionMs / 10, 3_600_000));
  const pass = () =>
    trimJournal(db, retentionMs)
      .then((n) => n > 0 && log.info("journal trimmed", { entries: n }))
      .catch((err) => log.warn("journal trim failed", { err }));
  const first = setTimeout(pass, Math.min(every, 10_000));
  const timer = setInterval(pass, every);
  first.unref();
  timer.unref();
  signal.addEventListener("abort", () => (clearTimeout(first), clearInterval(timer)), { once: true });
}
