import { sql, type Kysely } from "kysely";

/**
 * Trees and the change feed (proto/drive/v1/tree.proto, feed.proto):
 *
 * - files, versions and journal rows carry what a pull restores: the entry
 *   kind (a folder entry keeps an empty folder), the permission bits and the
 *   file's own modification time in microseconds (a JS number holds that
 *   exactly; a Date would drop to milliseconds).
 * - The journal gains moves (from_path, from_revision) and attribute-only
 *   changes. namespaces.journal_trimmed_seq is the newest seq the retention
 *   sweep removed: a cursor at or before it can no longer be replayed.
 * - uploads.kind tells a multipart session from a small file's single PUT,
 *   which the sweeper removes with a delete instead of an abort.
 *
 * Every new column has a default or is nullable, so rows written before keep
 * their meaning: kind file, no mode or mtime known.
 */
export async function up(db: Kysely<any>): Promise<void> {
  for (const table of ["files", "versions", "journal"]) {
    await sql`alter table ${sql.table(table)} add column kind text not null default 'file'`.execute(db);
    await sql`alter table ${sql.table(table)} add column mode integer`.execute(db);
    await sql`alter table ${sql.table(table)} add column mtime_us bigint`.execute(db);
  }
  await sql`alter table journal add column from_path text`.execute(db);
  await sql`alter table journal add column from_revision bigint`.execute(db);
  await sql`alter table namespaces add column journal_trimmed_seq bigint not null default 0`.execute(db);
  await sql`create index journal_created on journal (created_at)`.execute(db);

  await sql`alter table uploads add column kind text not null default 'multipart'`.execute(db);
  await sql`alter table uploads add column mode integer`.execute(db);
  await sql`alter table uploads add column mtime_us bigint`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`delete from uploads where kind <> 'multipart'`.execute(db);
  for (const col of ["kind", "mode", "mtime_us"]) await sql`alter table uploads drop column ${sql.ref(col)}`.execute(db);
  await sql`drop index journal_created`.execute(db);
  await sql`alter table namespaces drop column journal_trimmed_seq`.execute(db);
  // Moves and attribute changes have no meaning under the old schema.
  await sql`delete from journal where op not in ('put', 'delete')`.execute(db);
  await sql`alter table journal drop column from_path`.execute(db);
  await sql`alter table journal drop column from_revision`.execute(db);
  for (const table of ["files", "versions", "journal"]) {
    for (const col of ["kind", "mode", "mtime_us"]) await sql`alter table ${sql.table(table)} drop column ${sql.ref(col)}`.execute(db);
  }
}
