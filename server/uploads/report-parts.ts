import { MAX_CHUNK_SIZE } from "../../shared/rules/chunking.js";
import { MIN_PART_SIZE } from "../../shared/rules/part-rules.js";
import type { Deps } from "../deps.js";
import { chunksUndeclared, invalid } from "../errors.js";
import type { CodecValue } from "../metadata/schema.js";
import { openUpload } from "./open-upload.js";
import { packStoredSizes } from "./stored-sizes.js";
import { partCount, readPlan, type PlanPart } from "./upload-plan.js";

export interface PartReportSpec {
  partNumber: number;
  /** Unquoted, already checked for length and characters. */
  etag: string;
  codec: number;
  storedSizes: number[];
}

/**
 * The most one zstd frame of a chunk can take: zstd's compress bound for
 * the biggest chunk (ZSTD_COMPRESSBOUND, about 0.4 % over). A frame that
 * does not shrink its chunk is legal; the part as a whole must shrink.
 */
export const MAX_FRAME_SIZE = MAX_CHUNK_SIZE + (MAX_CHUNK_SIZE >> 8) + 64;

/**
 * Records parts the client has sent (proto: UploadService.ReportParts): its
 * ETag, and how it stored the part's chunks. Only parts of the plan that
 * the client sends; CompleteUpload checks each report against the store.
 */
export async function reportParts(deps: Deps, namespaceId: number, uploadId: string, reports: readonly PartReportSpec[]): Promise<void> {
  // One row per part, even if a batch repeats one: the later report wins.
  const latest = new Map(reports.map((r) => [r.partNumber, r]));
  const upload = await openUpload(deps, namespaceId, uploadId);
  if (!upload.planned) throw chunksUndeclared(upload.chunks_declared, upload.chunk_count);
  if (latest.size === 0) return;
  const [plan, parts] = await Promise.all([readPlan(deps.db, upload.id, [...latest.keys()]), partCount(deps.db, upload.id)]);
  const byNumber = new Map(plan.map((p) => [p.partNumber, p]));
  const rows = [...latest.values()].map((r) => {
    const part = byNumber.get(r.partNumber);
    if (!part) throw invalid(`part ${r.partNumber} is not in this upload (1..${parts})`);
    if (part.copy) throw invalid(`part ${r.partNumber} is one the server copies: the client never sends or reports it`);
    const codec = checkCodec(r, part, part.partNumber === parts);
    return {
      upload_id: upload.id,
      part_number: r.partNumber,
      etag: r.etag,
      codec,
      stored_sizes: codec === 2 ? packStoredSizes(r.storedSizes) : null,
      by_server: false,
    };
  });
  await deps.db
    .insertInto("upload_parts")
    .values(rows)
    .onConflict((oc) =>
      oc.columns(["upload_id", "part_number"]).doUpdateSet((eb) => ({
        etag: eb.ref("excluded.etag"),
        codec: eb.ref("excluded.codec"),
        stored_sizes: eb.ref("excluded.stored_sizes"),
        by_server: false,
      })),
    )
    .execute();
}

/** The report's codec, once its stored sizes fit the part (see PartReport in proto/drive/v1/upload.proto). */
function checkCodec(r: PartReportSpec, part: PlanPart, last: boolean): CodecValue {
  const n = r.partNumber;
  if (r.codec === 1) {
    if (r.storedSizes.length) throw invalid(`part ${n}: stored_sizes must be empty for CODEC_NONE`);
    return 1;
  }
  if (r.codec !== 2) throw invalid(`part ${n}: codec must be CODEC_NONE or CODEC_ZSTD`);
  if (r.storedSizes.length !== part.chunkCount) {
    throw invalid(`part ${n}: stored_sizes has ${r.storedSizes.length} entries for the part's ${part.chunkCount} chunks`);
  }
  let sum = 0;
  for (const [i, s] of r.storedSizes.entries()) {
    if (!Number.isSafeInteger(s) || s < 1 || s > MAX_FRAME_SIZE) throw invalid(`part ${n}: stored_sizes[${i}] is ${s}, not 1 to ${MAX_FRAME_SIZE}`);
    sum += s;
  }
  if (sum >= part.size) throw invalid(`part ${n}: zstd frames of ${sum} bytes do not shrink its ${part.size}; report it as CODEC_NONE`);
  if (!last && sum < MIN_PART_SIZE) throw invalid(`part ${n}: ${sum} stored bytes is under S3's ${MIN_PART_SIZE}-byte part minimum; store it raw`);
  return 2;
}
