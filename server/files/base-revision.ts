import type { Kysely } from "kysely";
import { revisionConflict } from "../errors.js";
import type { Database } from "../metadata/schema.js";

/**
 * The optimistic-concurrency rule for every write: a write based on
 * revision N goes ahead only while the path is still at N. Base 0 means
 * "the path holds no live file", which a deletion also satisfies.
 */
export function checkBaseRevision(path: string, current: { revision: number; deleted: boolean } | undefined, base: number | null): void {
  if (base === null) return;
  const at = current?.revision ?? 0;
  if (at === base || (base === 0 && current?.deleted)) return;
  throw revisionConflict(path, current, base);
}

/** Reads the path's head and applies checkBaseRevision. */
export async function assertBaseRevision(db: Kysely<Database>, namespaceId: number, path: string, base: number | null): Promise<void> {
  if (base === null) return;
  const current = await db
    .selectFrom("files")
    .select(["revision", "deleted"])
    .where("namespace_id", "=", namespaceId)
    .where("path", "=", path)
    .executeTakeFirst();
  checkBaseRevision(path, current, base);
}
