import type { Transaction } from "kysely";
import { notFound } from "../errors.js";
import { appendEntry, lockNamespace } from "../journal/append-entry.js";
import type { Database, FileRow, HashKind } from "../metadata/schema.js";
import { checkBaseRevision } from "./base-revision.js";

export interface CommitRequest {
  namespaceId: number;
  path: string;
  authorId: number;
  /** The new content, or null to record a deletion. */
  blob: { id: number; size: number; contentHash: Buffer; hashKind: HashKind } | null;
  /** When set, the revision the writer based its change on (0: the path was absent). */
  baseRevision: number | null;
}

/**
 * Moves a path's head to new content (or a deletion) and records it: file
 * row, version row and journal entry in the caller's transaction, so all
 * three commit together or not at all. Writes to one namespace serialise on
 * its lock. Putting the content a path already holds changes nothing.
 */
export async function commitVersion(tx: Transaction<Database>, req: CommitRequest): Promise<FileRow> {
  await lockNamespace(tx, req.namespaceId);
  const current = await tx
    .selectFrom("files")
    .selectAll()
    .where("namespace_id", "=", req.namespaceId)
    .where("path", "=", req.path)
    .executeTakeFirst();

  checkBaseRevision(req.path, current, req.baseRevision);
  if (req.blob === null && (!current || current.deleted)) throw notFound(`${req.path} does not exist`);
  if (req.blob && current && !current.deleted && current.content_hash?.equals(req.blob.contentHash)) return current;

  const now = new Date();
  const head = {
    deleted: req.blob === null,
    blob_id: req.blob?.id ?? null,
    size: req.blob?.size ?? 0,
    content_hash: req.blob?.contentHash ?? null,
    content_hash_kind: req.blob?.hashKind ?? null,
    modified_at: now,
  };
  const file = current
    ? await tx
        .updateTable("files")
        .set({ ...head, revision: current.revision + 1 })
        .where("id", "=", current.id)
        .returningAll()
        .executeTakeFirstOrThrow()
    : await tx
        .insertInto("files")
        .values({ ...head, namespace_id: req.namespaceId, path: req.path, revision: 1 })
        .returningAll()
        .executeTakeFirstOrThrow();

  await tx
    .insertInto("versions")
    .values({
      file_id: file.id,
      revision: file.revision,
      deleted: file.deleted,
      blob_id: file.blob_id,
      size: file.size,
      content_hash: file.content_hash,
      content_hash_kind: file.content_hash_kind,
      author_id: req.authorId,
      created_at: now,
    })
    .execute();
  await appendEntry(tx, {
    namespace_id: req.namespaceId,
    op: file.deleted ? "delete" : "put",
    path: file.path,
    file_id: file.id,
    revision: file.revision,
    size: file.size,
    content_hash: file.content_hash,
    content_hash_kind: file.content_hash_kind,
  });
  return file;
}

