import type { Kysely } from "kysely";
import type { CodecValue, Database } from "../metadata/schema.js";
import { sumStoredSizes } from "./stored-sizes.js";

/** What upload_parts says about one part: a client's report, or the server's own copy. */
export interface PartRecord {
  etag: string;
  codec: CodecValue;
  /** zstd frame sizes, packed le32; null for codec none. */
  storedSizes: Buffer | null;
  /** True for a part the server copied. */
  byServer: boolean;
}

/** An upload's part records, by part number. */
export async function readPartRecords(db: Kysely<Database>, uploadId: string): Promise<Map<number, PartRecord>> {
  const rows = await db
    .selectFrom("upload_parts")
    .select(["part_number", "etag", "codec", "stored_sizes", "by_server"])
    .where("upload_id", "=", uploadId)
    .execute();
  return new Map(rows.map((r) => [r.part_number, { etag: r.etag, codec: r.codec, storedSizes: r.stored_sizes, byServer: r.by_server }]));
}

/** The bytes a reported client part stores: its frames for zstd, its plaintext otherwise. */
export function reportedStoredSize(plaintext: number, record: PartRecord): number {
  return record.codec === 2 && record.storedSizes ? sumStoredSizes(record.storedSizes) : plaintext;
}
