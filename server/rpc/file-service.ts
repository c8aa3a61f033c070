import type { ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { FileService } from "../../gen/drive/v1/file_pb.js";
import type { Deps } from "../deps.js";
import { commitVersion } from "../files/commit-version.js";
import { ContentHashKind } from "../../gen/drive/v1/types_pb.js";
import { MAX_CHUNKS_PER_PAGE } from "../../shared/rules/chunking.js";
import { invalid } from "../errors.js";
import { chunkPage, findDownload, listFiles, listVersions, statFile } from "../files/file-queries.js";
import { checkPath } from "../uploads/validate-upload.js";
import { callerOf, originOf } from "./caller.js";
import { fileInfo, toNumber } from "./convert.js";
import { checkPrefix, pageSize, pathToken, revisionToken } from "./request-limits.js";

export function fileService(deps: Deps): ServiceImpl<typeof FileService> {
  return {
    async stat(req, ctx) {
      checkPath(req.path);
      return { file: fileInfo(await statFile(deps.db, callerOf(ctx).namespaceId, req.path)) };
    },

    async listFiles(req, ctx) {
      checkPrefix(req.prefix);
      const limit = pageSize(req.pageSize);
      const after = pathToken.decode(req.pageToken);
      const rows = await listFiles(deps.db, callerOf(ctx).namespaceId, { prefix: req.prefix, after, limit: limit + 1 });
      const page = rows.slice(0, limit);
      const more = rows.length > limit;
      return {
        files: page.map(fileInfo),
        nextPageToken: more ? pathToken.encode(page[page.length - 1]!.path) : "",
      };
    },

    async delete(req, ctx) {
      checkPath(req.path);
      const caller = callerOf(ctx);
      const file = await deps.db.transaction().execute((tx) =>
        commitVersion(tx, {
          namespaceId: caller.namespaceId,
          path: req.path,
          authorId: caller.user.id,
          blob: null,
          baseRevision: req.baseRevision === undefined ? null : toNumber(req.baseRevision, "base_revision"),
        }),
      );
      return { revision: BigInt(file.revision) };
    },

    async listVersions(req, ctx) {
      checkPath(req.path);
      const limit = pageSize(req.pageSize);
      const before = revisionToken.decode(req.pageToken);
      const rows = await listVersions(deps.db, callerOf(ctx).namespaceId, req.path, { before, limit: limit + 1 });
      const page = rows.slice(0, limit);
      return {
        nextPageToken: rows.length > limit ? revisionToken.encode(page[page.length - 1]!.revision) : "",
        versions: page.map((v) => ({
          revision: BigInt(v.revision),
          size: BigInt(v.size),
          contentHash: v.content_hash ?? new Uint8Array(),
          createdAt: timestampFromDate(v.created_at),
          deleted: v.deleted,
          author: v.author,
          contentHashKind: v.content_hash_kind ?? ContentHashKind.UNSPECIFIED,
        })),
      };
    },

    async getDownload(req, ctx) {
      checkPath(req.path);
      if (req.firstChunk < 0n) throw invalid("first_chunk must not be negative");
      const found = await findDownload(deps.db, callerOf(ctx).namespaceId, req.path, toNumber(req.revision, "revision"));
      const first = Math.min(toNumber(req.firstChunk, "first_chunk"), found.chunkCount);
      const [url, chunks] = await Promise.all([
        found.objectKey
          ? deps.store
              .presignGet({ key: found.objectKey, expiresInSeconds: deps.settings.urlTtlSeconds, origin: originOf(ctx, deps.settings.publicUrl) })
              .then((signed) => signed.url)
          : "",
        first < found.chunkCount ? chunkPage(deps.db, found.blobId, first, MAX_CHUNKS_PER_PAGE) : [],
      ]);
      return {
        file: fileInfo(found.file),
        revision: BigInt(found.file.revision),
        url,
        urlExpiresInSeconds: BigInt(deps.settings.urlTtlSeconds),
        chunks: chunks.map((c) => ({
          size: BigInt(c.size),
          hash: c.hash,
          offset: BigInt(c.plain_offset),
          storedOffset: BigInt(c.stored_offset),
          storedSize: BigInt(c.stored_size),
          codec: c.codec,
        })),
        chunkCount: BigInt(found.chunkCount),
        storedSize: BigInt(found.storedSize),
      };
    },
  };
}
