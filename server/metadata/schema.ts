import type { ColumnType, Generated, Insertable, Selectable } from "kysely";

/** Table types for kysely. bigint columns are parsed as numbers (see database.ts). */
export interface Database {
  users: UsersTable;
  namespaces: NamespacesTable;
  blobs: BlobsTable;
  files: FilesTable;
  versions: VersionsTable;
  journal: JournalTable;
  uploads: UploadsTable;
  upload_parts: UploadPartsTable;
  blob_chunks: BlobChunksTable;
  upload_chunks: UploadChunksTable;
  upload_plan: UploadPlanTable;
}

/** ContentHashKind's values (proto/drive/v1/types.proto). */
export type HashKind = 1 | 2;
/** EntryKind's values as stored (proto/drive/v1/types.proto). */
export type EntryKindValue = "file" | "folder";
/** Journal ops (ChangeOp in proto/drive/v1/feed.proto). */
export type JournalOp = "put" | "delete" | "move" | "attrs";

/**
 * What a pull restores besides the bytes (migration 0004). mode is the
 * permission bits (mode & 0o7777); mtime_us the file's own modification time
 * in microseconds since the epoch. Both null when the writer did not say.
 */
interface EntryAttributes {
  kind: ColumnType<EntryKindValue, EntryKindValue | undefined, EntryKindValue>;
  mode: number | null;
  mtime_us: number | null;
}

/** Codec's values: 1 none, 2 zstd. */
export type CodecValue = 1 | 2;

type CreatedAt = ColumnType<Date, Date | undefined, never>;

export interface UsersTable {
  id: Generated<number>;
  name: string;
  /** Public half of the token, used to find the row. */
  token_id: string;
  /** SHA-256 of the secret half; the secret itself is never stored. */
  token_hash: Buffer;
  admin: boolean;
  created_at: CreatedAt;
}

/** A tree with its own journal: a user's home now, shared folders later. */
export interface NamespacesTable {
  id: Generated<number>;
  kind: "home";
  owner_id: number;
  /** Last journal sequence number; bumped under this row's lock. */
  journal_seq: Generated<number>;
  /** Newest seq the retention sweep removed; a cursor at or before it is reset. */
  journal_trimmed_seq: Generated<number>;
  created_at: CreatedAt;
}

/** Stored content, deduplicated per namespace by content hash. */
export interface BlobsTable {
  id: Generated<number>;
  namespace_id: number;
  content_hash: Buffer;
  size: number;
  /** Null for the empty file, which has no object. */
  object_key: string | null;
  /** Null since migration 0003: the chunk list lives in blob_chunks. */
  chunks: Buffer | null;
  /** 1: BLAKE3 of the bytes; 2: the old chunk-list hash. */
  hash_kind: ColumnType<HashKind, HashKind | undefined, never>;
  /** Bytes of the stored object: under size when chunks are compressed. */
  stored_size: number;
  /** Rows in blob_chunks for this blob, so GetDownload pages without counting them. */
  chunk_count: number;
  created_at: CreatedAt;
}

/**
 * The chunk index and each blob's chunk list: one row per chunk, in file
 * order. Looked up by (namespace_id, hash) to find bytes a namespace
 * already stores.
 */
export interface BlobChunksTable {
  blob_id: number;
  seq: number;
  namespace_id: number;
  hash: Buffer;
  size: number;
  plain_offset: number;
  stored_offset: number;
  stored_size: number;
  codec: CodecValue;
}

/** The head of each path: its newest revision, denormalised for listing. */
export interface FilesTable extends EntryAttributes {
  id: Generated<number>;
  namespace_id: number;
  path: string;
  revision: number;
  deleted: boolean;
  /** Null when deleted. */
  blob_id: number | null;
  size: number;
  content_hash: Buffer | null;
  content_hash_kind: HashKind | null;
  modified_at: Date;
}

export interface VersionsTable extends EntryAttributes {
  id: Generated<number>;
  file_id: number;
  revision: number;
  deleted: boolean;
  blob_id: number | null;
  size: number;
  content_hash: Buffer | null;
  content_hash_kind: HashKind | null;
  author_id: number;
  created_at: CreatedAt;
}

export interface JournalTable extends EntryAttributes {
  namespace_id: number;
  /** Gap-free per namespace: taken from namespaces.journal_seq in the writing transaction. */
  seq: number;
  op: JournalOp;
  /** A move's old path and the revision that recorded its removal there; null otherwise. */
  from_path: ColumnType<string | null, string | null | undefined, string | null>;
  from_revision: ColumnType<number | null, number | null | undefined, number | null>;
  path: string;
  file_id: number;
  revision: number;
  size: number;
  content_hash: Buffer | null;
  content_hash_kind: HashKind | null;
  created_at: CreatedAt;
}

export interface UploadsTable {
  id: string;
  /** multipart: a session against the store; single: a small file's one presigned PUT (BeginPuts). */
  kind: ColumnType<"multipart" | "single", "multipart" | "single" | undefined, never>;
  /** Attributes to commit with the content (see EntryAttributes). */
  mode: ColumnType<number | null, number | null | undefined, number | null>;
  mtime_us: ColumnType<number | null, number | null | undefined, number | null>;
  namespace_id: number;
  user_id: number;
  path: string;
  size: number;
  content_hash: Buffer;
  /** Null since migration 0003: chunks live in upload_chunks. */
  chunks: Buffer | null;
  /** Chunks in all, and how many upload_chunks holds so far (DeclareChunks). */
  chunk_count: number;
  chunks_declared: number;
  /** Target plaintext size of client parts, as grown to fit 10,000 parts. */
  part_size: number;
  /** True once every chunk is declared and upload_plan holds the parts. */
  planned: boolean;
  base_revision: number | null;
  object_key: string;
  store_upload_id: string;
  state: "open" | "completed";
  /** The revision CompleteUpload committed, so a retry returns the same. */
  result_revision: number | null;
  created_at: CreatedAt;
  expires_at: Date;
}

export interface UploadPartsTable {
  upload_id: string;
  part_number: number;
  etag: string;
  /** How the part stores its chunks; stored_sizes packs each zstd frame's length as le32. */
  codec: ColumnType<CodecValue, CodecValue | undefined, CodecValue>;
  stored_sizes: Buffer | null;
  /** A part the server copied: its ETag came from the copy, not a client. */
  by_server: ColumnType<boolean, boolean | undefined, boolean>;
  reported_at: CreatedAt;
}

export interface UploadChunksTable {
  upload_id: string;
  seq: number;
  size: number;
  hash: Buffer;
}

/** An upload's parts, in order; a part with source_blob_id set is one the server copies. */
export interface UploadPlanTable {
  upload_id: string;
  part_number: number;
  first_chunk: number;
  chunk_count: number;
  size: number;
  source_blob_id: number | null;
  source_first_seq: number | null;
  source_start: number | null;
  source_end: number | null;
}

export type User = Selectable<UsersTable>;
export type FileRow = Selectable<FilesTable>;
export type UploadRow = Selectable<UploadsTable>;
export type NewUpload = Insertable<UploadsTable>;
