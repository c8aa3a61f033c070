import { sql, type Kysely } from "kysely";
import type { ChunkLocation } from "../../shared/rules/part-plan.js";
import type { Database } from "../metadata/schema.js";

/** Hashes per lookup: one array parameter each, so any batch size is one query. */
const BATCH = 8192;
/**
 * Places kept per chunk hash, newest blobs first. Bounds memory when a chunk
 * sits in many versions, or many times in one blob (a run of zeros): a 50 GB
 * file of 48,000 chunks keeps at most 768,000 places. A run can still be
 * copied from any of the newest blobs that hold all of it.
 */
const PER_HASH = 16;

/**
 * Where this namespace already stores each chunk of a list, from the chunk
 * index (blob_chunks), for planParts' `locate`: newest blob first, which is
 * the one planParts tries first. One query per 8,192 distinct hashes, not
 * one per chunk. A place counts only with the declared size too: a client
 * that declares a stored chunk's hash with another size gets no copy of it.
 */
export async function chunkLocator(
  db: Kysely<Database>,
  namespaceId: number,
  chunks: ReadonlyArray<{ size: number; hash: Uint8Array }>,
): Promise<(chunk: number) => readonly ChunkLocation[]> {
  const keys = chunks.map(({ hash: h }) => Buffer.from(h.buffer, h.byteOffset, h.byteLength).toString("base64"));
  const distinct = [...new Set(keys)];
  const found = new Map<string, Array<ChunkLocation & { size: number }>>();
  for (let i = 0; i < distinct.length; i += BATCH) {
    const batch = distinct.slice(i, i + BATCH).map((k) => Buffer.from(k, "base64"));
    const { rows } = await sql<{ blob_id: number; seq: number; hash: Buffer; size: number; stored_offset: number; stored_size: number }>`
      select blob_id, seq, hash, size, stored_offset, stored_size from (
        select blob_id, seq, hash, size, stored_offset, stored_size,
          row_number() over (partition by hash order by blob_id desc, seq) as rank
        from blob_chunks
        where namespace_id = ${namespaceId} and hash = any(${batch}::bytea[])
      ) ranked
      where rank <= ${PER_HASH}
      order by blob_id desc, seq
    `.execute(db);
    for (const r of rows) {
      const key = r.hash.toString("base64");
      let places = found.get(key);
      if (!places) found.set(key, (places = []));
      places.push({ blobId: r.blob_id, seq: r.seq, size: r.size, storedOffset: r.stored_offset, storedSize: r.stored_size });
    }
  }
  const none: readonly ChunkLocation[] = [];
  return (chunk) => {
    const places = found.get(keys[chunk]!);
    if (!places) return none;
    const size = chunks[chunk]!.size;
    return places.filter((p) => p.size === size).map(({ blobId, seq, storedOffset, storedSize }) => ({ blobId, seq, storedOffset, storedSize }));
  };
}
