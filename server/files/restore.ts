import type { Transaction } from "kysely";
import { DriveError, notFound } from "../errors.js";
import { lockNamespace } from "../journal/append-entry.js";
import type { Database, FileRow } from "../metadata/schema.js";
import { checkBaseRevision, holdsContent, readHead } from "./base-revision.js";
import { commitMany, PathClash, type EntryContent } from "./commit-many.js";
import { shortPath } from "./file-queries.js";

export interface RestoreRequest {
  namespaceId: number;
  authorId: number;
  path: string;
  /** The revision to bring back; 0: the newest that is not a deletion. */
  revision: number;
  /** When set, restore only while the path is still at this revision (strict: no identical-content rule). */
  baseRevision: number | null;
}

export interface Restored {
  /** The path's state after the restore. */
  file: FileRow;
  /** The revision whose content came back. */
  restoredFrom: number;
}

/**
 * FileService.Restore (proto/drive/v1/file.proto): a new revision with an
 * earlier revision's content, kind, mode and mtime, committed through
 * commitMany, so it is one version row and one journal entry (op put) that
 * watchers hear of. No bytes move: blobs are never deleted, so the old
 * revision's blob is still there to point at. Restoring what the path holds
 * now commits nothing. An old revision written without a mode or mtime
 * (null: not said) keeps the current entry's, as any put that leaves them
 * out does.
 */
export async function restoreRevision(tx: Transaction<Database>, req: RestoreRequest): Promise<Restored> {
  // From the first read: the base revision and the clash checks stay true until commit.
  await lockNamespace(tx, req.namespaceId);
  const head = await readHead(tx, req.namespaceId, req.path);
  if (!head) throw notFound(`${shortPath(req.path)} does not exist`);
  checkBaseRevision(req.path, head, req.baseRevision);

  let q = tx
    .selectFrom("versions")
    .leftJoin("blobs", "blobs.id", "versions.blob_id")
    .select(["versions.revision", "versions.deleted", "versions.kind", "versions.mode", "versions.mtime_us", "versions.blob_id", "blobs.size", "blobs.content_hash", "blobs.hash_kind"])
    .where("versions.file_id", "=", head.id);
  q = req.revision === 0 ? q.where("versions.deleted", "=", false).orderBy("versions.revision", "desc").limit(1) : q.where("versions.revision", "=", req.revision);
  const v = await q.executeTakeFirst();
  if (!v || v.deleted) {
    throw notFound(
      req.revision === 0
        ? `${shortPath(req.path)} has no revision that is not a deletion`
        : `${shortPath(req.path)} has no revision ${req.revision}, or it is a deletion`,
    );
  }

  let content: EntryContent;
  if (v.kind === "folder") content = { kind: "folder" };
  else if (v.blob_id !== null && v.content_hash !== null && v.size !== null && v.hash_kind !== null) {
    content = { kind: "file", blob: { id: v.blob_id, size: v.size, contentHash: v.content_hash, hashKind: v.hash_kind } };
  } else throw new Error(`${req.path} revision ${v.revision}: a live file version without its blob`);

  const restoredFrom = v.revision;
  if (holdsContent(head, { kind: content.kind, contentHash: content.kind === "file" ? content.blob.contentHash : null })) {
    return { file: head, restoredFrom };
  }
  const [outcome] = await commitMany(tx, { namespaceId: req.namespaceId, authorId: req.authorId }, [
    { path: req.path, content, mode: v.mode, mtimeUs: v.mtime_us, baseRevision: null },
  ]);
  if (!outcome!.ok) {
    const err = outcome!.error;
    // Restore's contract names the clash AlreadyExists: something else now lies where the entry would come back.
    if (err instanceof PathClash) throw new DriveError("already_exists", err.message);
    throw err;
  }
  return { file: outcome!.file, restoredFrom };
}
