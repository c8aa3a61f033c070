import { sql, type Transaction } from "kysely";
import type { Database, UploadRow } from "../metadata/schema.js";

/**
 * Records a completed upload's content as a blob with its chunk list and
 * stored layout (blob_chunks), in the caller's transaction. Returns the
 * blob's id and whether this call made it: when the same content landed
 * through another upload meanwhile, that blob stays and ours is unused.
 */
export async function insertBlob(tx: Transaction<Database>, upload: UploadRow, storedSize: number): Promise<{ id: number; created: boolean }> {
  const made = await tx
    .insertInto("blobs")
    .values({
      namespace_id: upload.namespace_id,
      content_hash: upload.content_hash,
      size: upload.size,
      object_key: upload.object_key,
      chunks: null,
      hash_kind: 1,
      stored_size: storedSize,
      chunk_count: upload.chunk_count,
    })
    .onConflict((oc) => oc.constraint("blobs_content").doNothing())
    .returning("id")
    .executeTakeFirst();
  if (!made) {
    const other = await tx
      .selectFrom("blobs")
      .select("id")
      .where("namespace_id", "=", upload.namespace_id)
      .where("content_hash", "=", upload.content_hash)
      .executeTakeFirstOrThrow();
    return { id: other.id, created: false };
  }
  const rows = await insertBlobChunks(tx, made.id, upload);
  if (rows !== upload.chunk_count) throw new Error(`upload ${upload.id}: ${rows} chunk rows for ${upload.chunk_count} chunks`);
  return { id: made.id, created: true };
}

/**
 * One row per chunk, computed in PostgreSQL from the upload's chunks, plan
 * and part records, so that a 48,000-chunk list never travels through node:
 * - a chunk of a part the client stored raw stores its plaintext (codec 1);
 * - a chunk of a zstd part stores its frame, whose size is the le32 at its
 *   index in the part's stored_sizes (codec 2);
 * - a chunk of a copied part stores what its source chunk stores, codec
 *   included: a copied run may span source parts of either codec.
 * Offsets are running sums in chunk order: parts are back to back in the
 * object, and chunks back to back in their part.
 */
async function insertBlobChunks(tx: Transaction<Database>, blobId: number, upload: UploadRow): Promise<number> {
  const result = await sql`
    insert into blob_chunks (blob_id, seq, namespace_id, hash, size, plain_offset, stored_offset, stored_size, codec)
    select ${blobId}, c.seq, ${upload.namespace_id}, c.hash, c.size,
      sum(c.size) over w - c.size, sum(c.stored_size) over w - c.stored_size, c.stored_size, c.codec
    from (
      select uc.seq, uc.hash, uc.size,
        case
          when p.source_blob_id is not null then src.stored_size
          when up.codec = 2 then
            get_byte(up.stored_sizes, 4 * i.k)::bigint
            + (get_byte(up.stored_sizes, 4 * i.k + 1)::bigint << 8)
            + (get_byte(up.stored_sizes, 4 * i.k + 2)::bigint << 16)
            + (get_byte(up.stored_sizes, 4 * i.k + 3)::bigint << 24)
          else uc.size
        end as stored_size,
        case when p.source_blob_id is not null then src.codec else up.codec end as codec
      from upload_plan p
      cross join lateral generate_series(0, p.chunk_count - 1) as i(k)
      join upload_chunks uc on uc.upload_id = p.upload_id and uc.seq = p.first_chunk + i.k
      join upload_parts up on up.upload_id = p.upload_id and up.part_number = p.part_number
      left join blob_chunks src on src.blob_id = p.source_blob_id and src.seq = p.source_first_seq + i.k
      where p.upload_id = ${upload.id}
    ) c
    window w as (order by c.seq)
  `.execute(tx);
  return Number(result.numAffectedRows ?? 0);
}
