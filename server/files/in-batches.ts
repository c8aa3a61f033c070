import { sql, type Transaction } from "kysely";
import type { Database } from "../metadata/schema.js";

/** `items` cut into runs of at most `size`: a statement's parameters stay under PostgreSQL's 65,535. */
export function* inBatches<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

/**
 * Turns PostgreSQL's JIT off for the rest of a transaction that writes
 * batches: a statement of 1,000 rows passes its cost threshold, and compiling
 * it took longer than running it (a 1,000-row versions insert: 365 ms with
 * JIT, 105 ms without, measured in test/server/tree-speed.test.ts).
 */
export async function withoutJit(tx: Transaction<Database>): Promise<void> {
  await sql`set local jit = off`.execute(tx);
}
