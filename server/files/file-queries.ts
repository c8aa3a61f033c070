import { sql } from "kysely";
import { invalid, notFound, type DriveError } from "../errors.js";
import type { Db } from "../metadata/database.js";
import type { EntryKindValue, FileRow, HashKind } from "../metadata/schema.js";

/** The live head of a path; NotFound when absent or deleted. */
export async function statFile(db: Db, namespaceId: number, path: string): Promise<FileRow> {
  const file = await db
    .selectFrom("files")
    .selectAll()
    .where("namespace_id", "=", namespaceId)
    .where("path", "=", path)
    .executeTakeFirst();
  if (!file || file.deleted) throw notFound(`${shortPath(path)} does not exist`);
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

/** A deleted path as ListFiles with deleted lists it: the deletion's revision and time, the last live revision's content and attributes. */
export type DeletedRow = Pick<FileRow, "path" | "revision" | "modified_at" | "deleted" | "size" | "content_hash" | "content_hash_kind" | "kind" | "mode" | "mtime_us">;

/**
 * Deleted files whose path starts with `prefix`, after `after`, in bytewise
 * path order: heads that record a deletion of a file, each with its last
 * live revision (what Restore with no revision brings back). A range of the
 * files_deleted index, bounded on both sides by the prefix, and one probe of
 * versions_revision per row listed.
 */
export async function listDeleted(db: Db, namespaceId: number, opts: { prefix: string; after: string; limit: number }): Promise<DeletedRow[]> {
  const upper = prefixEnd(opts.prefix);
  const { rows } = await sql<DeletedRow>`
    select f.path, f.revision, f.modified_at, f.deleted, live.size, live.content_hash, live.content_hash_kind, live.kind, live.mode, live.mtime_us
    from files f
    cross join lateral (
      select v.size, v.content_hash, v.content_hash_kind, v.kind, v.mode, v.mtime_us from versions v
      where v.file_id = f.id and not v.deleted
      order by v.revision desc
      limit 1) as live
    where f.namespace_id = ${namespaceId} and f.deleted and f.kind = 'file' and f.path collate "C" >= ${opts.prefix}
      ${opts.after ? sql`and f.path collate "C" > ${opts.after}` : sql``}
      ${upper === null ? sql`` : sql`and f.path collate "C" < ${upper}`}
      ${opts.prefix ? sql`and starts_with(f.path, ${opts.prefix})` : sql``}
    order by f.path collate "C"
    limit ${opts.limit}`.execute(db);
  return rows;
}

/**
 * The least string above every string that starts with `prefix`, in
 * bytewise (code point) order: the prefix with its last code point raised
 * by one. null when there is none (an empty prefix, or one of U+10FFFF only).
 */
export function prefixEnd(prefix: string): string | null {
  const cps = [...prefix].map((c) => c.codePointAt(0)!);
  while (cps.length) {
    let last = cps.pop()! + 1;
    if (last === 0xd800) last = 0xe000; // no surrogates in text
    if (last <= 0x10ffff) return String.fromCodePoint(...cps, last);
  }
  return null;
}

export interface VersionWithAuthor {
  revision: number;
  deleted: boolean;
  size: number;
  content_hash: Buffer | null;
  content_hash_kind: HashKind | null;
  kind: EntryKindValue;
  mode: number | null;
  mtime_us: number | null;
  created_at: Date;
  author: string;
}

/**
 * Revisions of a path, newest first: up to `limit` of them, older than
 * `before` when set. NotFound when the path never existed, even on a later
 * page, so a page past the end of a real path is empty rather than missing.
 */
export async function listVersions(
  db: Db,
  namespaceId: number,
  path: string,
  opts: { before: number | null; limit: number },
): Promise<VersionWithAuthor[]> {
  const file = await db.selectFrom("files").select("id").where("namespace_id", "=", namespaceId).where("path", "=", path).executeTakeFirst();
  if (!file) throw notFound(`${shortPath(path)} does not exist`);
  let q = db
    .selectFrom("versions")
    .innerJoin("users", "users.id", "versions.author_id")
    .select([
      "versions.revision",
      "versions.deleted",
      "versions.size",
      "versions.content_hash",
      "versions.content_hash_kind",
      "versions.kind",
      "versions.mode",
      "versions.mtime_us",
      "versions.created_at",
      "users.name as author",
    ])
    .where("versions.file_id", "=", file.id)
    .orderBy("versions.revision", "desc")
    .limit(opts.limit);
  if (opts.before !== null) q = q.where("versions.revision", "<", opts.before);
  return q.execute();
}

export interface DownloadableVersion {
  /** The version served, shaped as a file head. */
  file: FileRow;
  blobId: number;
  objectKey: string | null;
  storedSize: number;
  chunkCount: number;
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
  if (!file || (revision === 0 && file.deleted)) throw notFound(`${shortPath(path)} does not exist`);
  const version = await db
    .selectFrom("versions")
    .innerJoin("blobs", "blobs.id", "versions.blob_id")
    .select([
      "versions.revision",
      "versions.created_at",
      "versions.content_hash_kind",
      "versions.kind",
      "versions.mode",
      "versions.mtime_us",
      "blobs.id as blob_id",
      "blobs.size",
      "blobs.content_hash",
      "blobs.object_key",
      "blobs.stored_size",
      "blobs.chunk_count",
    ])
    .where("versions.file_id", "=", file.id)
    .where("versions.revision", "=", revision === 0 ? file.revision : revision)
    .executeTakeFirst();
  if (!version) throw notFound(`${shortPath(path)} has no revision ${revision}, or it is a deletion`);
  return {
    file: {
      ...file,
      revision: version.revision,
      deleted: false,
      size: version.size,
      content_hash: version.content_hash,
      content_hash_kind: version.content_hash_kind,
      kind: version.kind,
      mode: version.mode,
      mtime_us: version.mtime_us,
      modified_at: version.created_at,
    },
    blobId: version.blob_id,
    objectKey: version.object_key,
    storedSize: version.stored_size,
    chunkCount: version.chunk_count,
  };
}

/**
 * findDownload for the current revision of many paths, in two queries:
 * a path with nothing live, or a folder entry, maps to a DriveError.
 */
export async function findDownloads(db: Db, namespaceId: number, paths: readonly string[]): Promise<Map<string, DownloadableVersion | DriveError>> {
  const found = new Map<string, DownloadableVersion | DriveError>();
  if (paths.length === 0) return found;
  const rows = await db
    .selectFrom("files")
    .leftJoin("blobs", "blobs.id", "files.blob_id")
    .selectAll("files")
    .select(["blobs.object_key", "blobs.stored_size", "blobs.chunk_count"])
    .where("files.namespace_id", "=", namespaceId)
    .where("files.path", "in", [...paths])
    .execute();
  for (const { object_key, stored_size, chunk_count, ...file } of rows) {
    if (file.deleted) continue;
    if (file.kind === "folder") {
      found.set(file.path, invalid(`${shortPath(file.path)} is a folder: it has no content to download`));
      continue;
    }
    found.set(file.path, { file, blobId: file.blob_id!, objectKey: object_key, storedSize: stored_size ?? 0, chunkCount: chunk_count ?? 0 });
  }
  for (const p of paths) if (!found.has(p)) found.set(p, notFound(`${shortPath(p)} does not exist`));
  return found;
}

/** The first `limit` chunks of each blob, by blob id, in one query. */
export async function firstChunkPages(db: Db, blobIds: readonly number[], limit: number) {
  const pages = new Map<number, Awaited<ReturnType<typeof chunkPage>>>();
  if (blobIds.length === 0) return pages;
  const rows = await db
    .selectFrom("blob_chunks")
    .select(["blob_id", "size", "hash", "plain_offset", "stored_offset", "stored_size", "codec"])
    .where("blob_id", "in", [...new Set(blobIds)])
    .where("seq", "<", limit)
    .orderBy("blob_id")
    .orderBy("seq")
    .execute();
  for (const { blob_id, ...chunk } of rows) {
    let page = pages.get(blob_id);
    if (!page) pages.set(blob_id, (page = []));
    page.push(chunk);
  }
  return pages;
}

/** Up to `limit` of a blob's chunks from `first`, in file order, with where each one's stored bytes sit. */
export async function chunkPage(db: Db, blobId: number, first: number, limit: number) {
  return db
    .selectFrom("blob_chunks")
    .select(["size", "hash", "plain_offset", "stored_offset", "stored_size", "codec"])
    .where("blob_id", "=", blobId)
    .where("seq", ">=", first)
    .orderBy("seq")
    .limit(limit)
    .execute();
}

/** A path for a message: valid paths are up to 4 KiB, too long to echo whole. */
export function shortPath(path: string): string {
  return path.length <= 200 ? path : `${[...path.slice(0, 400)].slice(0, 200).join("")}…`;
}
