import type { Transaction } from "kysely";
import type { Database, FileRow, HashKind } from "../metadata/schema.js";
import { commitMany, type EntryContent } from "./commit-many.js";

export interface CommitRequest {
  namespaceId: number;
  path: string;
  authorId: number;
  /** The new content, or null to record a deletion. */
  blob: { id: number; size: number; contentHash: Buffer; hashKind: HashKind } | null;
  /** A folder entry instead of content (blob must then be null). */
  folder?: boolean;
  /** Permission bits and the file's own mtime in µs; null or absent: not said (the live entry's stay). */
  mode?: number | null;
  mtimeUs?: number | null;
  /** When set, the revision the writer based its change on (0: the path was absent). */
  baseRevision: number | null;
}

/**
 * Moves a path's head to new content, a folder entry or a deletion and
 * records it: file row, version row and journal entry in the caller's
 * transaction, so all three commit together or not at all. Writes to one
 * namespace serialise on its lock. Putting what a path already holds, with
 * the same attributes, changes nothing; with other mode or mtime only, it
 * commits an attrs-only revision (journal op attrs). One item of commitMany.
 */
export async function commitVersion(tx: Transaction<Database>, req: CommitRequest): Promise<FileRow> {
  const content: EntryContent = req.folder ? { kind: "folder" } : req.blob ? { kind: "file", blob: req.blob } : null;
  const [outcome] = await commitMany(tx, { namespaceId: req.namespaceId, authorId: req.authorId }, [
    { path: req.path, content, mode: req.mode ?? null, mtimeUs: req.mtimeUs ?? null, baseRevision: req.baseRevision },
  ]);
  if (!outcome!.ok) throw outcome!.error;
  return outcome!.file;
}
