import { sql, type Kysely } from "kysely";

/** CreateUpload counts a user's open uploads against the limits (upload-limits.ts) on every new upload. */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index uploads_open_by_user on uploads (user_id) include (size) where state = 'open'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index uploads_open_by_user`.execute(db);
}
