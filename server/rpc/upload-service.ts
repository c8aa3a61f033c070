import type { ServiceImpl } from "@connectrpc/connect";
import { PartState, UploadService } from "../../gen/drive/v1/upload_pb.js";
import type { Deps } from "../deps.js";
import { invalid, uploadCompleted, uploadNotFound } from "../errors.js";
import { countChunks, unpackChunks } from "../metadata/chunk-codec.js";
import { abortUpload } from "../uploads/abort-upload.js";
import { completeUpload } from "../uploads/complete-upload.js";
import { createUpload } from "../uploads/create-upload.js";
import { extendUpload } from "../uploads/extend-upload.js";
import { presignParts } from "../uploads/presign-parts.js";
import { callerOf, originOf } from "./caller.js";
import { fileInfo, toNumber } from "./convert.js";
import { checkPath } from "../uploads/validate-upload.js";
import { checkCount, checkEtag, checkUploadId, MAX_PARTS, MAX_PARTS_PER_CALL } from "./request-limits.js";

export function uploadService(deps: Deps): ServiceImpl<typeof UploadService> {
  const expiresIn = BigInt(deps.settings.urlTtlSeconds);

  /** An upload of the caller's that is still open; the call keeps it from expiring. */
  async function openUpload(namespaceId: number, uploadId: string) {
    const upload = await deps.db
      .selectFrom("uploads")
      .selectAll()
      .where("id", "=", uploadId)
      .where("namespace_id", "=", namespaceId)
      .executeTakeFirst();
    if (!upload) throw uploadNotFound();
    if (upload.state !== "open") throw uploadCompleted();
    if (!(await extendUpload(deps, upload))) throw uploadNotFound();
    return upload;
  }

  /** 1-based part numbers, each possible in some upload; the upload's own count is checked later. */
  function checkPartNumber(n: number, field: string): void {
    if (n < 1 || n > MAX_PARTS) throw invalid(`${field} ${n} is out of range (1..${MAX_PARTS})`);
  }

  return {
    async createUpload(req, ctx) {
      checkPath(req.path);
      checkCount(req.chunks.length, MAX_PARTS, "chunks");
      const result = await createUpload(
        deps,
        callerOf(ctx),
        {
          path: req.path,
          size: toNumber(req.size, "size"),
          contentHash: Buffer.from(req.contentHash),
          chunks: req.chunks.map((c, i) => ({ size: toNumber(c.size, `chunks[${i}].size`), hash: c.hash })),
          baseRevision: req.baseRevision === undefined ? null : toNumber(req.baseRevision, "base_revision"),
        },
        { origin: originOf(ctx, deps.settings.publicUrl), window: req.presignWindow },
      );
      if (result.kind === "committed") return { committed: fileInfo(result.file) };
      const { upload, stored, unvouched, urls, resumed } = result;
      return {
        uploadId: upload.id,
        resumed,
        parts: unpackChunks(upload.chunks).map((_, i) => ({
          partNumber: i + 1,
          state: stored.has(i + 1) ? PartState.STORED : PartState.PENDING,
          storedEtag: unvouched.get(i + 1) ?? "",
        })),
        urls,
        urlExpiresInSeconds: expiresIn,
      };
    },

    async presignParts(req, ctx) {
      checkUploadId(req.uploadId);
      checkCount(req.partNumbers.length, MAX_PARTS_PER_CALL, "part_numbers");
      for (const n of req.partNumbers) checkPartNumber(n, "part_numbers: part");
      const upload = await openUpload(callerOf(ctx).namespaceId, req.uploadId);
      const urls = await presignParts(
        deps,
        { objectKey: upload.object_key, storeUploadId: upload.store_upload_id, chunks: unpackChunks(upload.chunks) },
        [...new Set(req.partNumbers)],
        originOf(ctx, deps.settings.publicUrl),
      );
      return { urls, urlExpiresInSeconds: expiresIn };
    },

    async reportParts(req, ctx) {
      checkUploadId(req.uploadId);
      checkCount(req.parts.length, MAX_PARTS_PER_CALL, "parts");
      const latest = new Map<number, string>(); // one row per part, even if a batch repeats one
      req.parts.forEach((p, i) => {
        checkPartNumber(p.partNumber, `parts[${i}]: part`);
        latest.set(p.partNumber, checkEtag(p.etag, `parts[${i}].etag`));
      });
      const upload = await openUpload(callerOf(ctx).namespaceId, req.uploadId);
      const parts = countChunks(upload.chunks);
      for (const n of latest.keys()) if (n > parts) throw invalid(`part ${n} is not in this upload (1..${parts})`);
      if (latest.size === 0) return {};
      await deps.db
        .insertInto("upload_parts")
        .values([...latest].map(([part_number, etag]) => ({ upload_id: upload.id, part_number, etag })))
        .onConflict((oc) => oc.columns(["upload_id", "part_number"]).doUpdateSet((eb) => ({ etag: eb.ref("excluded.etag") })))
        .execute();
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
