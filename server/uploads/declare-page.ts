import type { Transaction } from "kysely";
import type { ChunkDigest } from "../../shared/rules/content-hash.js";
import { chunkGap, invalid } from "../errors.js";
import type { Database, UploadRow } from "../metadata/schema.js";
import { bytesBefore, checkPage, declaredChunks, firstDifference, insertChunks } from "./chunk-pages.js";

/**
 * Declares one page of an upload's chunk list (proto: DeclareChunks), on a
 * row the caller holds locked. Pages come in order; the part of a page that
 * repeats chunks already declared must repeat them exactly (a retry after a
 * lost reply), and only the rest is stored. Returns chunks_declared after it.
 */
export async function declarePage(tx: Transaction<Database>, upload: UploadRow, first: number, chunks: readonly ChunkDigest[]): Promise<number> {
  if (first > upload.chunks_declared) throw chunkGap(first, upload.chunks_declared);
  const end = first + chunks.length;
  if (end > upload.chunk_count) throw invalid(`chunks ${first}..${end - 1} go past chunk_count ${upload.chunk_count}`);
  const known = Math.min(end, upload.chunks_declared);
  const diff = firstDifference(await declaredChunks(tx, upload.id, first, known), chunks, first);
  if (diff >= 0) throw invalid(`chunk ${diff} differs from the chunk ${diff} already declared`);
  if (end <= upload.chunks_declared) return upload.chunks_declared;

  const fresh = chunks.slice(known - first);
  checkPage(fresh, { first: known, chunkCount: upload.chunk_count, size: upload.size, bytesBefore: await bytesBefore(tx, upload.id, known) });
  await insertChunks(tx, upload.id, known, fresh);
  await tx.updateTable("uploads").set({ chunks_declared: end }).where("id", "=", upload.id).execute();
  return end;
}
