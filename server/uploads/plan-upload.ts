import type { Transaction } from "kysely";
import type { BlobFeatures } from "../blob/blob-store.js";
import { planParts, type PlannedPart } from "../../shared/rules/part-plan.js";
import { MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE } from "../../shared/rules/part-rules.js";
import type { Database, UploadRow } from "../metadata/schema.js";
import { chunkLocator } from "./chunk-locations.js";
import { insertPlan, toPlanPart, type PlanPart } from "./upload-plan.js";

/**
 * Plans an upload whose chunks are all declared (proto: the call that
 * declares the last chunk returns the plan), on a row the caller holds
 * locked: reads the chunk list, finds where the namespace already stores
 * each chunk, groups the chunks into parts with planParts, and stores the
 * plan. The plan never changes after.
 */
export async function planUpload(tx: Transaction<Database>, upload: UploadRow, store: { features: BlobFeatures }): Promise<PlanPart[]> {
  const chunks = await tx.selectFrom("upload_chunks").select(["size", "hash"]).where("upload_id", "=", upload.id).orderBy("seq").execute();
  if (chunks.length !== upload.chunk_count) throw new Error(`upload ${upload.id} holds ${chunks.length} of ${upload.chunk_count} chunks`);
  // A store that cannot copy parts gets a plan of parts the client sends.
  const locate = store.features.partCopy ? await chunkLocator(tx, upload.namespace_id, chunks) : () => [];
  const parts = planParts(chunks, upload.part_size, locate);
  checkPlan(parts, chunks, locate);
  await insertPlan(tx, upload.id, parts);
  await tx.updateTable("uploads").set({ planned: true }).where("id", "=", upload.id).execute();
  return parts.map(toPlanPart);
}

/**
 * The planner's promises, checked before a plan is stored: an upload that
 * S3 would refuse at complete, after every byte had moved, fails here
 * instead. A broken plan is a server bug (Internal).
 */
export function checkPlan(
  parts: readonly PlannedPart[],
  chunks: ReadonlyArray<{ size: number; hash: Uint8Array }>,
  locate: Parameters<typeof planParts>[2],
): void {
  const fail = (why: string) => {
    throw new Error(`part plan broken: ${why}`);
  };
  if (parts.length > MAX_PARTS) fail(`${parts.length} parts`);
  if (chunks.length > 0 && parts.length === 0) fail("no parts");
  let next = 0;
  parts.forEach((p, i) => {
    const last = i === parts.length - 1;
    if (p.partNumber !== i + 1) fail(`part ${i + 1} numbered ${p.partNumber}`);
    if (p.firstChunk !== next || p.chunkCount < 1) fail(`part ${p.partNumber} does not start at chunk ${next}`);
    let size = 0;
    for (let c = p.firstChunk; c < p.firstChunk + p.chunkCount; c++) size += chunks[c]?.size ?? NaN;
    if (size !== p.size) fail(`part ${p.partNumber} is ${p.size} bytes, its chunks ${size}`);
    let stored = p.size;
    if (p.copy) {
      const { blobId, firstSeq, start, end } = p.copy;
      let at = start;
      for (let k = 0; k < p.chunkCount; k++) {
        const place = locate(p.firstChunk + k).find((l) => l.blobId === blobId && l.seq === firstSeq + k);
        if (!place || place.storedOffset !== at) fail(`copy part ${p.partNumber} is not a run of blob ${blobId}`);
        at += place!.storedSize;
      }
      if (at !== end) fail(`copy part ${p.partNumber} ends at ${end}, its chunks at ${at}`);
      stored = end - start;
    }
    if (stored > MAX_PART_SIZE || (!last && stored < MIN_PART_SIZE)) fail(`part ${p.partNumber} stores ${stored} bytes`);
    next = p.firstChunk + p.chunkCount;
  });
  if (next !== chunks.length) fail(`parts cover ${next} of ${chunks.length} chunks`);
}
