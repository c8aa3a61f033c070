import type { ServiceImpl } from "@connectrpc/connect";
import { TreeService } from "../../gen/drive/v1/tree_pb.js";
import type { Deps } from "../deps.js";
import { beginPuts } from "../tree/begin-puts.js";
import { commitPuts } from "../tree/commit-puts.js";
import { deletePaths } from "../tree/delete-paths.js";
import { getDownloads } from "../tree/get-downloads.js";
import { asItem, itemError } from "../tree/item-error.js";
import { moveTree } from "../tree/move-tree.js";
import { checkItemCaps, putSpec } from "../tree/put-spec.js";
import { checkBatch } from "../tree/tree-limits.js";
import { checkPath } from "../uploads/validate-upload.js";
import { callerOf, originOf } from "./caller.js";
import { fileInfo, toNumber } from "./convert.js";
import { checkUploadId } from "./request-limits.js";

/**
 * TreeService (proto/drive/v1/tree.proto): batches for whole trees. The
 * caps of the whole request are checked first and fail the call; each
 * item's own checks fail that item alone, as an ItemError built from the
 * same DriveError a unary call would return.
 */
export function treeService(deps: Deps): ServiceImpl<typeof TreeService> {
  const expiresIn = BigInt(deps.settings.urlTtlSeconds);
  const failed = (err: unknown) => ({ result: { case: "error" as const, value: itemError(err) } });

  return {
    async beginPuts(req, ctx) {
      checkBatch(req.items.map((i) => i.path), "items");
      req.items.forEach(checkItemCaps);
      const specs = req.items.map((item) => asItem(() => putSpec(item)));
      const outcomes = await beginPuts(deps, callerOf(ctx), specs, originOf(ctx, deps.settings.publicUrl));
      return {
        results: outcomes.map((o) => {
          switch (o.kind) {
            case "committed":
              return { result: { case: "committed" as const, value: fileInfo(o.file) } };
            case "pending":
              return { result: { case: "pending" as const, value: { uploadId: o.uploadId, url: o.url, headers: o.headers, urlExpiresInSeconds: expiresIn } } };
            case "error":
              return failed(o.error);
          }
        }),
      };
    },

    async commitPuts(req, ctx) {
      checkBatch(req.uploadIds, "upload_ids", "upload id");
      for (const id of req.uploadIds) checkUploadId(id);
      const outcomes = await commitPuts(deps, callerOf(ctx), req.uploadIds);
      return { results: outcomes.map((o) => (o.ok ? { result: { case: "committed" as const, value: fileInfo(o.file) } } : failed(o.error))) };
    },

    async deletePaths(req, ctx) {
      checkBatch(req.items.map((i) => i.path), "items");
      const items = req.items.map((item) =>
        asItem(() => {
          checkPath(item.path);
          return { path: item.path, baseRevision: item.baseRevision === undefined ? null : toNumber(item.baseRevision, "base_revision") };
        }),
      );
      const outcomes = await deletePaths(deps, callerOf(ctx), items);
      return { results: outcomes.map((o) => (o.ok ? { result: { case: "committed" as const, value: fileInfo(o.file) } } : failed(o.error))) };
    },

    async move(req, ctx) {
      checkPath(req.fromPath);
      checkPath(req.toPath);
      const baseRevision = req.baseRevision === undefined ? null : toNumber(req.baseRevision, "base_revision");
      const moved = await moveTree(deps, callerOf(ctx), { from: req.fromPath, to: req.toPath, baseRevision });
      return { moved: BigInt(moved) };
    },

    async getDownloads(req, ctx) {
      checkBatch(req.paths, "paths");
      const paths = req.paths.map((p) => asItem(() => (checkPath(p), p)));
      const outcomes = await getDownloads(deps, callerOf(ctx).namespaceId, paths, originOf(ctx, deps.settings.publicUrl));
      return { results: outcomes.map((o) => (o.ok ? { result: { case: "download" as const, value: o.download } } : failed(o.error))) };
    },
  };
}

