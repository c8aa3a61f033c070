import { sql } from "kysely";
import { notFound } from "../errors.js";
import type { Db } from "../metadata/database.js";
import type { FileRow } from "../metadata/schema.js";

/** The live head of a path; NotFound when absent or deleted. */
export async function statFile(db: Db, namespaceId: number, path: string): Promise<FileRow> {
  const file = await db
    .selectFrom("files")
    .selectAll()
    .where("namespace_id", "=", namespaceId)
    .where("path", "=", path)
    .executeTakeFirst();
  if (!file || file.deleted) throw notFound(`${path} does not exist`);
  return file;
}

/** Live files whose path starts with `prefix`, after `after`, in bytewise path order. */
export async function listFiles(
  db: Db,
  namespaceId: number,
  opts: { prefix: string; after: string; limit: number },
): Promise<FileRow[]> {
  let q = db
    .selectFrom("files")
    .selectAll()
    .where("namespace_id", "=", namespaceId)
    .where("deleted", "=", false)
    .orderBy(sql`path collate "C"`)
    .limit(opts.limit);
  if (opts.prefix) q = q.where(sql<boolean>`starts_with(path, ${opts.prefix})`);
  if (opts.after) q = q.where(sql<boolean>`path collate "C" > ${opts.after}`);
  return q.execute();
}

export interface VersionWithAuthor {
  revision: number;
  deleted: boolean;
  size: number;
  content_hash: Buffer | null;
  created_at: Date;
  author: string;
}

/** Every revision of a path, newest first; NotFound when it never existed. */
export async function listVersions(db: Db, namespaceId: number, path: string): Promise<VersionWithAuthor[]> {
  const rows = await db
    .selectFrom("files")
    .innerJoin("versions", "versions.file_id", "files.id")
    .innerJoin("users", "users.id", "versions.author_id")
    .select([
      "versions.revision",
      "versions.deleted",
      "versions.size",
      "versions.content_hash",
      "versions.created_at",
      "users.name as author",
    ])
    .where("files.namespace_id", "=", namespaceId)
    .where("files.path", "=", path)
    .orderBy("versions.revision", "desc")
    .execute();
  if (rows.length === 0) throw notFound(`${path} does not exist`);
  return rows;
}

export interface DownloadableVersion {
  /** The version served, shaped as a file head. */
  file: FileRow;
  objectKey: string | null;
  chunks: Buffer;
}

/** A stored version (the head when revision is 0) with what it takes to fetch it. */
export async function findDownload(
  db: Db,
  namespaceId: number,
  path: string,
  revision: number,
): Promise<DownloadableVersion> {
  const file = await db
    .selectFrom("files")
    .selectAll()
    .where("namespace_id", "=", namespaceId)
    .where("path", "=", path)
    .executeTakeFirst();
  if (!file || (revision === 0 && file.deleted)) throw notFound(`${path} does not exist`);
  const version = await db
    .selectFrom("versions")
    .innerJoin("blobs", "blobs.id", "versions.blob_id")
    .select(["versions.revision", "versions.created_at", "blobs.size", "blobs.content_hash", "blobs.object_key", "blobs.chunks"])
    .where("versions.file_id", "=", file.id)
    .where("versions.revision", "=", revision === 0 ? file.revision : revision)
    .executeTakeFirst();
  if (!version) throw notFound(`${path} has no revision ${revision}, or it is a deletion`);
  return {
    file: {
      ...file,
      revision: version.revision,
      deleted: false,
      size: version.size,
      content_hash: version.content_hash,
      modified_at: version.created_at,
    },
    objectKey: version.object_key,
    chunks: version.chunks,
  };
}
