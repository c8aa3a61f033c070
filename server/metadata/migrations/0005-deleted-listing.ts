import { sql, type Kysely } from "kysely";

/**
 * ListFiles with deleted set (drive ls --deleted) walks the deleted heads of
 * a namespace in path order, as the live listing walks files_listing: one
 * index range per page, never a scan of everything a namespace ever held.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index files_deleted on files (namespace_id, path collate "C") where deleted`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index files_deleted`.execute(db);
}
