import { sql, type Kysely } from "kysely";
import { checkChunkSizes, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE } from "../../shared/rules/chunking.js";
import { HASH_LENGTH, type ChunkDigest } from "../../shared/rules/content-hash.js";
import { invalid } from "../errors.js";
import type { Database } from "../metadata/schema.js";

export interface PageBounds {
  /** Index of the page's first chunk. */
  first: number;
  chunkCount: number;
  /** The file's size. */
  size: number;
  /** Bytes in chunks [0, first). */
  bytesBefore: number;
}

/**
 * Refuses a page of chunks that breaks the chunking rules or cannot add up:
 * it must stay within chunk_count, and the chunks after it must be able to
 * hold the rest of the file (each but the last MIN_CHUNK_SIZE to
 * MAX_CHUNK_SIZE), so a list that can never complete fails on its first page.
 */
export function checkPage(chunks: readonly ChunkDigest[], at: PageBounds): void {
  const end = at.first + chunks.length;
  if (end > at.chunkCount) throw invalid(`chunks ${at.first}..${end - 1} go past chunk_count ${at.chunkCount}`);
  chunks.forEach((c, i) => {
    if (c.hash.length !== HASH_LENGTH) throw invalid(`chunk ${at.first + i} hash must be ${HASH_LENGTH} bytes`);
  });
  const why = checkChunkSizes(
    chunks.map((c) => c.size),
    end === at.chunkCount,
    at.first,
  );
  if (why) throw invalid(why);
  let bytes = at.bytesBefore;
  for (const c of chunks) bytes += c.size;
  const rest = at.size - bytes;
  const left = at.chunkCount - end;
  if (left === 0 && rest !== 0) throw invalid(`chunk sizes add up to ${bytes}, not size ${at.size}`);
  if (left > 0 && (rest < (left - 1) * MIN_CHUNK_SIZE + 1 || rest > left * MAX_CHUNK_SIZE)) {
    throw invalid(`chunks 0..${end - 1} hold ${bytes} bytes: the ${left} chunks left cannot hold the other ${rest} of size ${at.size}`);
  }
}

/** Adds chunks [first, first + chunks.length) to an upload, in one statement whatever the page's length. */
export async function insertChunks(db: Kysely<Database>, uploadId: string, first: number, chunks: readonly ChunkDigest[]): Promise<void> {
  if (!chunks.length) return;
  await sql`
    insert into upload_chunks (upload_id, seq, size, hash)
    select ${uploadId}, s.seq, s.size, s.hash
    from unnest(${chunks.map((_, i) => first + i)}::int[], ${chunks.map((c) => c.size)}::bigint[], ${chunks.map((c) => c.hash)}::bytea[]) as s(seq, size, hash)
  `.execute(db);
}

/** Chunks [first, end) of an upload as declared, in order. */
export async function declaredChunks(db: Kysely<Database>, uploadId: string, first: number, end: number): Promise<ChunkDigest[]> {
  if (end <= first) return [];
  return db
    .selectFrom("upload_chunks")
    .select(["size", "hash"])
    .where("upload_id", "=", uploadId)
    .where("seq", ">=", first)
    .where("seq", "<", end)
    .orderBy("seq")
    .execute();
}

/** Index of the first chunk of `chunks` (starting at `first`) that differs from the declared one, or -1. */
export function firstDifference(declared: readonly ChunkDigest[], chunks: readonly ChunkDigest[], first: number): number {
  for (let i = 0; i < declared.length; i++) {
    const d = declared[i]!;
    const c = chunks[i]!;
    if (d.size !== c.size || !Buffer.from(d.hash).equals(Buffer.from(c.hash))) return first + i;
  }
  return -1;
}

/** Bytes in an upload's chunks [0, end). */
export async function bytesBefore(db: Kysely<Database>, uploadId: string, end: number): Promise<number> {
  const row = await db
    .selectFrom("upload_chunks")
    .select(sql<number>`coalesce(sum(size), 0)::bigint`.as("bytes"))
    .where("upload_id", "=", uploadId)
    .where("seq", "<", end)
    .executeTakeFirstOrThrow();
  return row.bytes;
}
