import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { ContentHashKind, type FileInfo } from "../../gen/drive/v1/types_pb.js";
import type { PartStatus, PresignedPart } from "../../gen/drive/v1/upload_pb.js";
import { MAX_CHUNKS_PER_PAGE } from "../../shared/rules/chunking.js";
import type { DriveClient } from "../rpc/drive-client.js";
import type { ScannedFile } from "./scan-file.js";

/** An open upload with its plan. */
export interface PlannedUpload {
  committed?: undefined;
  uploadId: string;
  resumed: boolean;
  /** The plan, every part in order; validated against the scan. */
  parts: PartStatus[];
  urls: PresignedPart[];
  urlExpiresInSeconds: number;
}

/** What CreateUpload and the DeclareChunks after it came to. */
export type OpenedUpload = { committed: FileInfo } | PlannedUpload;

export interface OpenUploadRequest {
  remote: string;
  baseRevision?: number;
  /** Target plaintext size of client parts (CreateUploadRequest.part_size). */
  partSize: number;
  presignWindow: number;
  signal: AbortSignal;
  /** Permission bits and modification time to record with the version (CreateUploadRequest.mode, mtime); absent: not said. */
  mode?: number;
  mtime?: Timestamp;
}

/**
 * Starts (or resumes) the upload of a scanned file and declares its whole
 * chunk list, a page at a time: CreateUpload carries the first 8,192
 * chunks, DeclareChunks the rest from where the server's chunks_declared
 * stands (so a push killed mid-declare resumes there). The call that
 * completes the list returns the plan.
 */
export async function openUpload(client: DriveClient, req: OpenUploadRequest, scan: ScannedFile): Promise<OpenedUpload> {
  const count = scan.chunks.length;
  const page = (from: number) =>
    scan.chunks.slice(from, from + MAX_CHUNKS_PER_PAGE).map((c) => ({ size: BigInt(c.size), hash: c.hash }));
  const created = await client.uploads.createUpload(
    {
      path: req.remote,
      size: BigInt(scan.size),
      contentHash: scan.contentHash,
      contentHashKind: ContentHashKind.BLAKE3,
      chunks: page(0),
      chunkCount: BigInt(count),
      partSize: BigInt(req.partSize),
      baseRevision: req.baseRevision === undefined ? undefined : BigInt(req.baseRevision),
      presignWindow: req.presignWindow,
      mode: req.mode ?? 0,
      mtime: req.mtime,
    },
    { signal: req.signal },
  );
  if (created.committed) return { committed: created.committed };
  let declared = Number(created.chunksDeclared);
  let { parts, urls } = created;
  let expires = Number(created.urlExpiresInSeconds);
  while (declared < count) {
    const r = await client.uploads.declareChunks(
      { uploadId: created.uploadId, firstChunk: BigInt(declared), chunks: page(declared), presignWindow: req.presignWindow },
      { signal: req.signal },
    );
    const now = Number(r.chunksDeclared);
    // A server that takes nothing would have us loop for ever.
    if (!(now > declared)) throw new Error(`the server took no chunks from ${declared} on (chunks_declared ${now})`);
    declared = now;
    ({ parts, urls } = r);
    expires = Number(r.urlExpiresInSeconds);
  }
  checkPlan(parts, scan);
  return { uploadId: created.uploadId, resumed: created.resumed, parts, urls, urlExpiresInSeconds: expires };
}

/**
 * The plan must cover the declared chunks exactly once, in order, with
 * each part's size the sum of its chunks': the client reads its file by
 * it, and a plan that does not add up would send the wrong bytes.
 */
export function checkPlan(parts: readonly PartStatus[], scan: Pick<ScannedFile, "chunks">): void {
  let next = 0;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    const first = Number(p.firstChunk);
    const size = scan.chunks.slice(first, first + p.chunkCount).reduce((s, c) => s + c.size, 0);
    if (p.partNumber !== i + 1 || first !== next || p.chunkCount < 1 || first + p.chunkCount > scan.chunks.length || Number(p.size) !== size) {
      throw new Error(`the server's plan does not fit the file at part ${p.partNumber} (chunks ${first}+${p.chunkCount}, ${p.size} bytes)`);
    }
    next = first + p.chunkCount;
  }
  if (next !== scan.chunks.length) throw new Error(`the server's plan covers ${next} of ${scan.chunks.length} chunks`);
}
