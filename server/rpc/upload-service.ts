import type { ServiceImpl } from "@connectrpc/connect";
import { PartState, UploadService } from "../../gen/drive/v1/upload_pb.js";
import type { Deps } from "../deps.js";
import { invalid, uploadCompleted, uploadNotFound } from "../errors.js";
import { countChunks, unpackChunks } from "../metadata/chunk-codec.js";
import { abortUpload } from "../uploads/abort-upload.js";
import { completeUpload } from "../uploads/complete-upload.js";
import { createUpload } from "../uploads/create-upload.js";
import { MAX_PRESIGN_BATCH, presignParts } from "../uploads/presign-parts.js";
import { callerOf, originOf } from "./caller.js";
import { fileInfo, toNumber } from "./convert.js";

export function uploadService(deps: Deps): ServiceImpl<typeof UploadService> {
  const expiresIn = BigInt(deps.settings.urlTtlSeconds);

  /** An upload of the caller's that is still open. */
  async function openUpload(namespaceId: number, uploadId: string) {
    const upload = await deps.db
      .selectFrom("uploads")
      .selectAll()
      .where("id", "=", uploadId)
      .where("namespace_id", "=", namespaceId)
      .executeTakeFirst();
    if (!upload) throw uploadNotFound();
    if (upload.state !== "open") throw uploadCompleted();
    return upload;
  }

  return {
    async createUpload(req, ctx) {
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
      if (req.partNumbers.length > MAX_PRESIGN_BATCH) throw invalid(`at most ${MAX_PRESIGN_BATCH} parts per call`);
      const upload = await openUpload(callerOf(ctx).namespaceId, req.uploadId);
      const urls = await presignParts(
        deps,
        { objectKey: upload.object_key, storeUploadId: upload.store_upload_id, chunks: unpackChunks(upload.chunks) },
        req.partNumbers,
        originOf(ctx, deps.settings.publicUrl),
      );
      return { urls, urlExpiresInSeconds: expiresIn };
    },

    async reportParts(req, ctx) {
      const upload = await openUpload(callerOf(ctx).namespaceId, req.uploadId);
      const parts = countChunks(upload.chunks);
      const latest = new Map<number, string>(); // one row per part, even if a batch repeats one
      for (const p of req.parts) {
        if (p.partNumber < 1 || p.partNumber > parts) throw invalid(`part ${p.partNumber} is not in this upload (1..${parts})`);
        latest.set(p.partNumber, p.etag.replace(/"/g, ""));
      }
      if (latest.size === 0) return {};
      await deps.db
        .insertInto("upload_parts")
        .values([...latest].map(([part_number, etag]) => ({ upload_id: upload.id, part_number, etag })))
        .onConflict((oc) => oc.columns(["upload_id", "part_number"]).doUpdateSet((eb) => ({ etag: eb.ref("excluded.etag") })))
        .execute();
      return {};
    },

    async completeUpload(req, ctx) {
      return { file: fileInfo(await completeUpload(deps, callerOf(ctx), req.uploadId)) };
    },

    async abortUpload(req, ctx) {
      await abortUpload(deps, callerOf(ctx), req.uploadId);
      return {};
    },
  };
}
