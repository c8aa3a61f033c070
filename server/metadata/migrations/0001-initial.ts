import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("users")
    .addColumn("id", "bigserial", (c) => c.primaryKey())
    .addColumn("name", "text", (c) => c.notNull().unique())
    .addColumn("token_id", "text", (c) => c.notNull().unique())
    .addColumn("token_hash", "bytea", (c) => c.notNull())
    .addColumn("admin", "boolean", (c) => c.notNull().defaultTo(false))
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable("namespaces")
    .addColumn("id", "bigserial", (c) => c.primaryKey())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("owner_id", "bigint", (c) => c.notNull().references("users.id"))
    .addColumn("journal_seq", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex("namespaces_owner").on("namespaces").columns(["owner_id", "kind"]).execute();

  await db.schema
    .createTable("blobs")
    .addColumn("id", "bigserial", (c) => c.primaryKey())
    .addColumn("namespace_id", "bigint", (c) => c.notNull().references("namespaces.id"))
    .addColumn("content_hash", "bytea", (c) => c.notNull())
    .addColumn("size", "bigint", (c) => c.notNull())
    .addColumn("object_key", "text")
    .addColumn("chunks", "bytea", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint("blobs_content", ["namespace_id", "content_hash"])
    .execute();

  await db.schema
    .createTable("files")
    .addColumn("id", "bigserial", (c) => c.primaryKey())
    .addColumn("namespace_id", "bigint", (c) => c.notNull().references("namespaces.id"))
    .addColumn("path", "text", (c) => c.notNull())
    .addColumn("revision", "bigint", (c) => c.notNull())
    .addColumn("deleted", "boolean", (c) => c.notNull())
    .addColumn("blob_id", "bigint", (c) => c.references("blobs.id"))
    .addColumn("size", "bigint", (c) => c.notNull())
    .addColumn("content_hash", "bytea")
    .addColumn("modified_at", "timestamptz", (c) => c.notNull())
    .addUniqueConstraint("files_path", ["namespace_id", "path"])
    .execute();
  // Paths sort and prefix-match bytewise, whatever the database's locale.
  await sql`create index files_listing on files (namespace_id, path collate "C") where not deleted`.execute(db);

  await db.schema
    .createTable("versions")
    .addColumn("id", "bigserial", (c) => c.primaryKey())
    .addColumn("file_id", "bigint", (c) => c.notNull().references("files.id"))
    .addColumn("revision", "bigint", (c) => c.notNull())
    .addColumn("deleted", "boolean", (c) => c.notNull())
    .addColumn("blob_id", "bigint", (c) => c.references("blobs.id"))
    .addColumn("size", "bigint", (c) => c.notNull())
    .addColumn("content_hash", "bytea")
    .addColumn("author_id", "bigint", (c) => c.notNull().references("users.id"))
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint("versions_revision", ["file_id", "revision"])
    .execute();

  await db.schema
    .createTable("journal")
    .addColumn("namespace_id", "bigint", (c) => c.notNull().references("namespaces.id"))
    .addColumn("seq", "bigint", (c) => c.notNull())
    .addColumn("op", "text", (c) => c.notNull())
    .addColumn("path", "text", (c) => c.notNull())
    .addColumn("file_id", "bigint", (c) => c.notNull().references("files.id"))
    .addColumn("revision", "bigint", (c) => c.notNull())
    .addColumn("size", "bigint", (c) => c.notNull())
    .addColumn("content_hash", "bytea")
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint("journal_pk", ["namespace_id", "seq"])
    .execute();

  await db.schema
    .createTable("uploads")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("namespace_id", "bigint", (c) => c.notNull().references("namespaces.id"))
    .addColumn("user_id", "bigint", (c) => c.notNull().references("users.id"))
    .addColumn("path", "text", (c) => c.notNull())
    .addColumn("size", "bigint", (c) => c.notNull())
    .addColumn("content_hash", "bytea", (c) => c.notNull())
    .addColumn("chunks", "bytea", (c) => c.notNull())
    .addColumn("base_revision", "bigint")
    .addColumn("object_key", "text", (c) => c.notNull())
    .addColumn("store_upload_id", "text", (c) => c.notNull())
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("result_revision", "bigint")
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("expires_at", "timestamptz", (c) => c.notNull())
    .execute();
  // One open upload per (namespace, path, content): a second CreateUpload resumes it.
  await sql`create unique index uploads_open on uploads (namespace_id, path, content_hash) where state = 'open'`.execute(db);
  await sql`create index uploads_expiry on uploads (expires_at) where state = 'open'`.execute(db);
  await sql`create index uploads_store_id on uploads (store_upload_id)`.execute(db);

  await db.schema
    .createTable("upload_parts")
    .addColumn("upload_id", "text", (c) => c.notNull().references("uploads.id").onDelete("cascade"))
    .addColumn("part_number", "integer", (c) => c.notNull())
    .addColumn("etag", "text", (c) => c.notNull())
    .addColumn("reported_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint("upload_parts_pk", ["upload_id", "part_number"])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ["upload_parts", "uploads", "journal", "versions", "files", "blobs", "namespaces", "users"]) {
    await db.schema.dropTable(table).execute();
  }
}
