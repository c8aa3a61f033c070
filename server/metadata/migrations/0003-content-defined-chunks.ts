import { sql, type Kysely } from "kysely";

/**
 * Content-defined chunks apart from parts (see proto/drive/v1/types.proto):
 *
 * - blob_chunks is the chunk index: per namespace, a chunk's hash to where
 *   its stored bytes sit (blob, stored offset and size, codec). It also is
 *   each blob's chunk list, a row per chunk, so a 50 GB file is ~48,000
 *   small rows, never one 2 MB value.
 * - Existing blobs keep their hash (kind 2, CONTENT_HASH_KIND_CHUNK_LIST);
 *   their packed chunk lists move into blob_chunks as raw chunks.
 * - An upload's chunks and plan get their own tables, filled a page at a time.
 * - Uploads left open by the old client cannot complete under the new plan:
 *   they expire now, and the sweeper aborts them in the store.
 *
 * down() drops what only this schema can hold (the chunk index, plans,
 * codecs); the old packed lists do not come back, so going back means a
 * backup taken before.
 */
export async function up(db: Kysely<any>): Promise<void> {
  // Values are ContentHashKind's: 1 BLAKE3 of the bytes, 2 the old chunk-list hash.
  await sql`alter table blobs add column hash_kind smallint not null default 2`.execute(db);
  await sql`alter table blobs alter column hash_kind set default 1`.execute(db);
  await sql`alter table blobs add column stored_size bigint`.execute(db);
  await sql`update blobs set stored_size = size`.execute(db);
  await sql`alter table blobs alter column stored_size set not null`.execute(db);
  await sql`alter table blobs alter column chunks drop not null`.execute(db);

  for (const table of ["files", "versions", "journal"]) {
    await sql`alter table ${sql.table(table)} add column content_hash_kind smallint`.execute(db);
    await sql`update ${sql.table(table)} set content_hash_kind = 2 where content_hash is not null`.execute(db);
  }

  await db.schema
    .createTable("blob_chunks")
    .addColumn("blob_id", "bigint", (c) => c.notNull().references("blobs.id"))
    .addColumn("seq", "integer", (c) => c.notNull())
    .addColumn("namespace_id", "bigint", (c) => c.notNull())
    .addColumn("hash", "bytea", (c) => c.notNull())
    .addColumn("size", "bigint", (c) => c.notNull())
    .addColumn("plain_offset", "bigint", (c) => c.notNull())
    .addColumn("stored_offset", "bigint", (c) => c.notNull())
    .addColumn("stored_size", "bigint", (c) => c.notNull())
    // Codec's values: 1 none, 2 zstd.
    .addColumn("codec", "smallint", (c) => c.notNull())
    .addPrimaryKeyConstraint("blob_chunks_pk", ["blob_id", "seq"])
    .execute();
  await sql`create index blob_chunks_by_hash on blob_chunks (namespace_id, hash)`.execute(db);

  // Old packed lists (le64 size + 32-byte hash per chunk, one chunk per part, stored raw) become
  // rows in one statement: no blob passes through node, however many there are.
  await sql`alter table blobs add column chunk_count integer not null default 0`.execute(db);
  await sql`update blobs set chunk_count = octet_length(chunks) / 40 where chunks is not null`.execute(db);
  await sql`
    with entries as (
      select b.id as blob_id, b.namespace_id, s.i as seq,
        substring(b.chunks from s.i * 40 + 9 for 32) as hash,
        (select sum(get_byte(b.chunks, s.i * 40 + k)::bigint << (8 * k)) from generate_series(0, 7) k)::bigint as size
      from blobs b, generate_series(0, octet_length(b.chunks) / 40 - 1) s(i)
      where b.chunks is not null
    )
    insert into blob_chunks (blob_id, seq, namespace_id, hash, size, plain_offset, stored_offset, stored_size, codec)
    select blob_id, seq, namespace_id, hash, size,
      (sum(size) over w - size)::bigint, (sum(size) over w - size)::bigint, size, 1
    from entries
    window w as (partition by blob_id order by seq)
  `.execute(db);
  await sql`update blobs set chunks = null`.execute(db);

  await sql`alter table uploads alter column chunks drop not null`.execute(db);
  await sql`alter table uploads add column chunk_count bigint not null default 0`.execute(db);
  await sql`alter table uploads add column chunks_declared bigint not null default 0`.execute(db);
  await sql`alter table uploads add column part_size bigint not null default 0`.execute(db);
  await sql`alter table uploads add column planned boolean not null default false`.execute(db);
  await sql`update uploads set expires_at = now() where state = 'open'`.execute(db);

  await db.schema
    .createTable("upload_chunks")
    .addColumn("upload_id", "text", (c) => c.notNull().references("uploads.id").onDelete("cascade"))
    .addColumn("seq", "integer", (c) => c.notNull())
    .addColumn("size", "bigint", (c) => c.notNull())
    .addColumn("hash", "bytea", (c) => c.notNull())
    .addPrimaryKeyConstraint("upload_chunks_pk", ["upload_id", "seq"])
    .execute();

  await db.schema
    .createTable("upload_plan")
    .addColumn("upload_id", "text", (c) => c.notNull().references("uploads.id").onDelete("cascade"))
    .addColumn("part_number", "integer", (c) => c.notNull())
    .addColumn("first_chunk", "integer", (c) => c.notNull())
    .addColumn("chunk_count", "integer", (c) => c.notNull())
    .addColumn("size", "bigint", (c) => c.notNull())
    // Set for a part the server copies: the source blob, its first chunk, and the stored byte range [start, end).
    .addColumn("source_blob_id", "bigint", (c) => c.references("blobs.id"))
    .addColumn("source_first_seq", "integer")
    .addColumn("source_start", "bigint")
    .addColumn("source_end", "bigint")
    .addPrimaryKeyConstraint("upload_plan_pk", ["upload_id", "part_number"])
    .execute();

  // How a reported part stores its chunks: codec 1 none, 2 zstd with packed le32 frame sizes.
  await sql`alter table upload_parts add column codec smallint not null default 1`.execute(db);
  await sql`alter table upload_parts add column stored_sizes bytea`.execute(db);
  // True for a part the server copied itself, whose ETag came from the copy.
  await sql`alter table upload_parts add column by_server boolean not null default false`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("upload_plan").execute();
  await db.schema.dropTable("upload_chunks").execute();
  await db.schema.dropTable("blob_chunks").execute();
  for (const col of ["codec", "stored_sizes", "by_server"]) await sql`alter table upload_parts drop column ${sql.ref(col)}`.execute(db);
  for (const col of ["chunk_count", "chunks_declared", "part_size", "planned"]) await sql`alter table uploads drop column ${sql.ref(col)}`.execute(db);
  for (const table of ["files", "versions", "journal"]) await sql`alter table ${sql.table(table)} drop column content_hash_kind`.execute(db);
  for (const col of ["stored_size", "hash_kind", "chunk_count"]) await sql`alter table blobs drop column ${sql.ref(col)}`.execute(db);
}
