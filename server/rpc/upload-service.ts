import type { ServiceImpl } from "@connectrpc/connect";
import { ContentHashKind } from "../../gen/drive/v1/types_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { PartState, UploadService, type PartStatusSchema, type PresignedPartSchema } from "../../gen/drive/v1/upload_pb.js";
import { MAX_CHUNKS_PER_PAGE } from "../../shared/rules/chunking.js";
import type { Deps } from "../deps.js";
import { invalid } from "../errors.js";
import { abortUpload } from "../uploads/abort-upload.js";
import { completeUpload } from "../uploads/complete-upload.js";
import { createUpload } from "../uploads/create-upload.js";
import { declareChunks } from "../uploads/declare-chunks.js";
import { presignRequested, type PartUrl } from "../uploads/presign-parts.js";
import { reportParts } from "../uploads/report-parts.js";
import type { UploadView } from "../uploads/upload-view.js";
import { checkPath } from "../uploads/validate-upload.js";
import { callerOf, originOf } from "./caller.js";
import { fileInfo, modeOf, mtimeMicros, toNumber } from "./convert.js";
import { checkCount, checkEtag, checkUploadId, MAX_PARTS, MAX_PARTS_PER_CALL, MAX_STORED_SIZES_PER_CALL } from "./request-limits.js";

export function uploadService(deps: Deps): ServiceImpl<typeof UploadService> {
  const expiresIn = BigInt(deps.settings.urlTtlSeconds);

  /** 1-based part numbers, each possible in some upload; the upload's own count is checked later. */
  function checkPartNumber(n: number, field: string): void {
    if (n < 1 || n > MAX_PARTS) throw invalid(`${field} ${n} is out of range (1..${MAX_PARTS})`);
  }

  /** Chunks as a request carries them: only size and hash count. */
  function chunksOf(chunks: ReadonlyArray<{ size: bigint; hash: Uint8Array }>, first: number) {
    checkCount(chunks.length, MAX_CHUNKS_PER_PAGE, "chunks");
    return chunks.map((c, i) => ({ size: toNumber(c.size, `chunks[${i}] (chunk ${first + i}) size`), hash: c.hash }));
  }

  return {
    async createUpload(req, ctx) {
      checkPath(req.path);
      if (req.contentHashKind !== ContentHashKind.BLAKE3) {
        throw invalid("content_hash_kind must be CONTENT_HASH_KIND_BLAKE3, the BLAKE3 of the file's bytes: this client is older than the server; upgrade it");
      }
      const result = await createUpload(
        deps,
        callerOf(ctx),
        {
          path: req.path,
          size: toNumber(req.size, "size"),
          contentHash: Buffer.from(req.contentHash),
          chunkCount: toNumber(req.chunkCount, "chunk_count"),
          chunks: chunksOf(req.chunks, 0),
          partSize: toNumber(req.partSize, "part_size"),
          baseRevision: req.baseRevision === undefined ? null : toNumber(req.baseRevision, "base_revision"),
          mode: modeOf(req.mode),
          mtimeUs: mtimeMicros(req.mtime),
        },
        { origin: originOf(ctx, deps.settings.publicUrl), window: req.presignWindow },
      );
      if (result.kind === "committed") return { committed: fileInfo(result.file) };
      return { uploadId: result.upload.id, resumed: result.resumed, ...viewMessage(result.view), urlExpiresInSeconds: expiresIn };
    },

    async declareChunks(req, ctx) {
      checkUploadId(req.uploadId);
      if (req.firstChunk < 0n) throw invalid("first_chunk must not be negative");
      const first = toNumber(req.firstChunk, "first_chunk");
      const chunks = chunksOf(req.chunks, first);
      const view = await declareChunks(
        deps,
        callerOf(ctx).namespaceId,
        { uploadId: req.uploadId, first, chunks },
        { origin: originOf(ctx, deps.settings.publicUrl), window: req.presignWindow },
      );
      return { ...viewMessage(view), urlExpiresInSeconds: expiresIn };
    },

    async presignParts(req, ctx) {
      checkUploadId(req.uploadId);
      checkCount(req.partNumbers.length, MAX_PARTS_PER_CALL, "part_numbers");
      for (const n of req.partNumbers) checkPartNumber(n, "part_numbers: part");
      const urls = await presignRequested(deps, callerOf(ctx).namespaceId, req.uploadId, req.partNumbers, originOf(ctx, deps.settings.publicUrl));
      return { urls: urls.map(urlMessage), urlExpiresInSeconds: expiresIn };
    },

    async reportParts(req, ctx) {
      checkUploadId(req.uploadId);
      checkCount(req.parts.length, MAX_PARTS_PER_CALL, "parts");
      let sizes = 0;
      for (const p of req.parts) sizes += p.storedSizes.length;
      if (sizes > MAX_STORED_SIZES_PER_CALL) throw invalid(`parts carry ${sizes} stored_sizes, over the ${MAX_STORED_SIZES_PER_CALL} maximum per call`);
      const reports = req.parts.map((p, i) => {
        checkPartNumber(p.partNumber, `parts[${i}]: part`);
        return {
          partNumber: p.partNumber,
          etag: checkEtag(p.etag, `parts[${i}].etag`),
          codec: p.codec,
          storedSizes: p.storedSizes.map((s, k) => toNumber(s, `parts[${i}].stored_sizes[${k}]`)),
        };
      });
      await reportParts(deps, callerOf(ctx).namespaceId, req.uploadId, reports);
      return {};
    },

    async completeUpload(req, ctx) {
      checkUploadId(req.uploadId);
      return { file: fileInfo(await completeUpload(deps, callerOf(ctx), req.uploadId)) };
    },

    async abortUpload(req, ctx) {
      checkUploadId(req.uploadId);
      await abortUpload(deps, callerOf(ctx), req.uploadId);
      return {};
    },
  };
}

/** The plan, part states and URLs, as CreateUploadResponse and DeclareChunksResponse share them. */
function viewMessage(view: UploadView): { chunksDeclared: bigint; parts: MessageInitShape<typeof PartStatusSchema>[]; urls: MessageInitShape<typeof PresignedPartSchema>[] } {
  return {
    chunksDeclared: BigInt(view.chunksDeclared),
    parts: view.parts.map((p) => ({
      partNumber: p.partNumber,
      state: p.stored ? PartState.STORED : PartState.PENDING,
      storedEtag: p.storedEtag,
      firstChunk: BigInt(p.firstChunk),
      chunkCount: p.chunkCount,
      size: BigInt(p.size),
      serverCopy: p.copy !== null,
    })),
    urls: view.urls.map(urlMessage),
  };
}

function urlMessage(u: PartUrl): MessageInitShape<typeof PresignedPartSchema> {
  return { partNumber: u.partNumber, url: u.url, headers: u.headers, maxSize: BigInt(u.maxSize) };
}
