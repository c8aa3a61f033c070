import type { Kysely } from "kysely";
import type { Database } from "../metadata/schema.js";

/** ETags the client reported for an upload's parts, by part number. */
export async function reportedParts(db: Kysely<Database>, uploadId: string): Promise<Map<number, string>> {
  const rows = await db.selectFrom("upload_parts").select(["part_number", "etag"]).where("upload_id", "=", uploadId).execute();
  return new Map(rows.map((r) => [r.part_number, r.etag]));
}
