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
}

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
  /** Packed chunk list: per chunk, le64 size then 32-byte BLAKE3. */
  chunks: Buffer;
  created_at: CreatedAt;
}

/** The head of each path: its newest revision, denormalised for listing. */
export interface FilesTable {
  id: Generated<number>;
  namespace_id: number;
  path: string;
  revision: number;
  deleted: boolean;
  /** Null when deleted. */
  blob_id: number | null;
  size: number;
  content_hash: Buffer | null;
  modified_at: Date;
}

export interface VersionsTable {
  id: Generated<number>;
  file_id: number;
  revision: number;
  deleted: boolean;
  blob_id: number | null;
  size: number;
  content_hash: Buffer | null;
  author_id: number;
  created_at: CreatedAt;
}

export interface JournalTable {
  namespace_id: number;
  /** Gap-free per namespace: taken from namespaces.journal_seq in the writing transaction. */
  seq: number;
  op: "put" | "delete";
  path: string;
  file_id: number;
  revision: number;
  size: number;
  content_hash: Buffer | null;
  created_at: CreatedAt;
}

export interface UploadsTable {
  id: string;
  namespace_id: number;
  user_id: number;
  path: string;
  size: number;
  content_hash: Buffer;
  chunks: Buffer;
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
  reported_at: CreatedAt;
}

export type User = Selectable<UsersTable>;
export type FileRow = Selectable<FilesTable>;
export type UploadRow = Selectable<UploadsTable>;
export type NewUpload = Insertable<UploadsTable>;
