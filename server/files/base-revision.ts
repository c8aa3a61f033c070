import type { Kysely } from "kysely";
import { revisionConflict } from "../errors.js";
import type { Database, EntryKindValue, FileRow } from "../metadata/schema.js";

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

/** What a content write would leave at a path: a kind and, for a file, its content hash. */
export interface WrittenContent {
  kind: EntryKindValue;
  contentHash: Buffer | null;
}

/** A path's head as far as the identical-content rule looks at it. */
export interface HeadContent {
  revision: number;
  deleted: boolean;
  kind: EntryKindValue;
  content_hash: Buffer | null;
}

/**
 * Identical content is not a conflict: a content write (a file's bytes or
 * a folder entry) whose base is stale, but which would leave the path with
 * the kind and content hash it holds now, has nothing to overwrite. It
 * succeeds with the current state and writes nothing. Two clients that
 * made the same edit, or a retry after a lost reply, converge instead of
 * failing. Deletes and moves keep the strict rule: they never reach here.
 */
export function holdsContent(current: HeadContent | undefined, content: WrittenContent): boolean {
  if (!current || current.deleted || current.kind !== content.kind) return false;
  const a = current.content_hash;
  const b = content.contentHash;
  return a === null || b === null ? a === b : a.equals(b);
}

/**
 * checkBaseRevision for a content write: "write" when the base holds (or
 * none was given), "identical" when it is stale but the path already holds
 * this content (see holdsContent); throws the conflict otherwise.
 */
export function checkContentBase(path: string, current: HeadContent | undefined, base: number | null, content: WrittenContent): "write" | "identical" {
  try {
    checkBaseRevision(path, current, base);
    return "write";
  } catch (err) {
    if (holdsContent(current, content)) return "identical";
    throw err;
  }
}

/** A path's head row, deleted or not; undefined when the path never existed. */
export async function readHead(db: Kysely<Database>, namespaceId: number, path: string): Promise<FileRow | undefined> {
  return db.selectFrom("files").selectAll().where("namespace_id", "=", namespaceId).where("path", "=", path).executeTakeFirst();
}
