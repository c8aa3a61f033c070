import { Codec, ContentHashKind } from "../../gen/drive/v1/types_pb.js";
import type { PartStatus, PresignedPart } from "../../gen/drive/v1/upload_pb.js";
import type { FileInfo } from "../../gen/drive/v1/types_pb.js";
import { MAX_CHUNKS_PER_PAGE } from "../../shared/rules/chunking.js";
import type { RpcHarness } from "./rpc-harness.js";
import { specOf } from "./upload-specs.js";

const MiB = 1024 * 1024;

export interface PushResult {
  uploadId: string;
  parts: PartStatus[];
  /** Part numbers this push PUT. */
  sent: number[];
  file: FileInfo;
}

/** PUTs a body to a presigned URL; returns the ETag, unquoted. */
export async function put(url: PresignedPart, body: Buffer): Promise<string> {
  const res = await fetch(url.url, { method: "PUT", headers: url.headers, body });
  if (res.status !== 200) throw new Error(`PUT part ${url.partNumber}: ${res.status} ${await res.text()}`);
  return (res.headers.get("etag") ?? "").replace(/"/g, "");
}

/** The bytes of a part of the plan, from the file. */
export function partBytes(data: Buffer, offsets: readonly number[], part: PartStatus): Buffer {
  const start = offsets[Number(part.firstChunk)]!;
  return data.subarray(start, start + Number(part.size));
}

/** Plaintext offset of each chunk of a spec. */
export function chunkOffsets(chunks: ReadonlyArray<{ size: number }>): number[] {
  const offsets = [0];
  for (const c of chunks) offsets.push(offsets[offsets.length - 1]! + c.size);
  return offsets;
}

/**
 * What a client does for `data` through the RPCs: CreateUpload and
 * DeclareChunks pages, a raw PUT of every part the plan gives it, one
 * ReportParts, CompleteUpload. Fixed-size chunks stand in for FastCDC: the
 * server checks sizes, not where the cuts fall.
 */
/** What a CreateUpload request needs of an upload's spec (specOf, or a list of chunks alone). */
export interface UploadSpecLike {
  path: string;
  size: number;
  contentHash: Uint8Array;
  chunkCount: number;
  chunks: ReadonlyArray<{ size: number; hash: Uint8Array }>;
}

/** The chunks as the wire carries them. */
export const wireChunks = (chunks: ReadonlyArray<{ size: number; hash: Uint8Array }>) => chunks.map((c) => ({ size: BigInt(c.size), hash: c.hash }));

/** CreateUpload's request for a spec, with the first page of its chunks; `extra` sets the other fields. */
export function createRequest(spec: UploadSpecLike, extra: Record<string, unknown> = {}) {
  return {
    path: spec.path,
    size: BigInt(spec.size),
    contentHash: spec.contentHash,
    contentHashKind: ContentHashKind.BLAKE3,
    chunkCount: BigInt(spec.chunkCount),
    chunks: wireChunks(spec.chunks.slice(0, MAX_CHUNKS_PER_PAGE)),
    ...extra,
  };
}

export async function pushRpc(h: RpcHarness, path: string, data: Buffer, opts: { chunkSize?: number; partSize?: number } = {}): Promise<PushResult> {
  const spec = specOf(path, data, opts.chunkSize ?? MiB);
  const created = await h.uploads.createUpload(createRequest({ ...spec, path }, { partSize: BigInt(opts.partSize ?? 0), presignWindow: 1000 }));
  if (created.committed) return { uploadId: "", parts: [], sent: [], file: created.committed };
  let { parts, urls } = created;
  for (let declared = Number(created.chunksDeclared); declared < spec.chunkCount; ) {
    const page = await h.uploads.declareChunks({
      uploadId: created.uploadId,
      firstChunk: BigInt(declared),
      chunks: spec.chunks.slice(declared, declared + MAX_CHUNKS_PER_PAGE).map((c) => ({ size: BigInt(c.size), hash: c.hash })),
      presignWindow: 1000,
    });
    declared = Number(page.chunksDeclared);
    ({ parts, urls } = page);
  }
  const offsets = chunkOffsets(spec.chunks);
  const reports = [];
  for (const url of urls) {
    const etag = await put(url, partBytes(data, offsets, parts[url.partNumber - 1]!));
    reports.push({ partNumber: url.partNumber, etag, codec: Codec.NONE });
  }
  await h.uploads.reportParts({ uploadId: created.uploadId, parts: reports });
  const { file } = await h.uploads.completeUpload({ uploadId: created.uploadId });
  return { uploadId: created.uploadId, parts, sent: urls.map((u) => u.partNumber), file: file! };
}

/** GETs a presigned URL, with a Range when given. */
export async function get(url: string, range?: string): Promise<Buffer> {
  const res = await fetch(url, range ? { headers: { range } } : {});
  if (res.status !== 200 && res.status !== 206) throw new Error(`GET: ${res.status} ${await res.text()}`);
  return Buffer.from(await res.arrayBuffer());
}
