import { sql, type Kysely } from "kysely";
import type { PlannedPart } from "../../shared/rules/part-plan.js";
import type { Database } from "../metadata/schema.js";

/** One part of an upload's plan, as upload_plan holds it. */
export interface PlanPart {
  partNumber: number;
  firstChunk: number;
  chunkCount: number;
  /** Plaintext bytes. */
  size: number;
  /** Set for a part the server copies: chunks firstSeq.. of blob blobId, stored bytes [start, end). */
  copy: { blobId: number; firstSeq: number; start: number; end: number } | null;
}

/** An upload's plan in part order, or only the parts named. */
export async function readPlan(db: Kysely<Database>, uploadId: string, partNumbers?: readonly number[]): Promise<PlanPart[]> {
  if (partNumbers?.length === 0) return [];
  let q = db.selectFrom("upload_plan").selectAll().where("upload_id", "=", uploadId).orderBy("part_number");
  if (partNumbers) q = q.where("part_number", "in", partNumbers);
  const rows = await q.execute();
  return rows.map((r) => ({
    partNumber: r.part_number,
    firstChunk: r.first_chunk,
    chunkCount: r.chunk_count,
    size: r.size,
    copy:
      r.source_blob_id === null
        ? null
        : { blobId: r.source_blob_id, firstSeq: r.source_first_seq!, start: r.source_start!, end: r.source_end! },
  }));
}

/** How many parts an upload's plan has. */
export async function partCount(db: Kysely<Database>, uploadId: string): Promise<number> {
  const row = await db
    .selectFrom("upload_plan")
    .select(sql<number>`coalesce(max(part_number), 0)::int`.as("n"))
    .where("upload_id", "=", uploadId)
    .executeTakeFirstOrThrow();
  return row.n;
}

/** Writes a plan in one statement, whatever its length (up to 10,000 parts). */
export async function insertPlan(db: Kysely<Database>, uploadId: string, parts: readonly PlannedPart[]): Promise<void> {
  if (!parts.length) return;
  const col = <T>(f: (p: PlannedPart) => T) => parts.map(f);
  await sql`
    insert into upload_plan (upload_id, part_number, first_chunk, chunk_count, size, source_blob_id, source_first_seq, source_start, source_end)
    select ${uploadId}, s.*
    from unnest(
      ${col((p) => p.partNumber)}::int[], ${col((p) => p.firstChunk)}::int[], ${col((p) => p.chunkCount)}::int[], ${col((p) => p.size)}::bigint[],
      ${col((p) => p.copy?.blobId ?? null)}::bigint[], ${col((p) => p.copy?.firstSeq ?? null)}::int[],
      ${col((p) => p.copy?.start ?? null)}::bigint[], ${col((p) => p.copy?.end ?? null)}::bigint[]
    ) as s
  `.execute(db);
}

/** PlannedPart as upload_plan keeps it. */
export function toPlanPart(p: PlannedPart): PlanPart {
  return { partNumber: p.partNumber, firstChunk: p.firstChunk, chunkCount: p.chunkCount, size: p.size, copy: p.copy ? { ...p.copy } : null };
}
