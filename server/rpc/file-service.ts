import type { ServiceImpl } from "@connectrpc/connect";
import { FileService } from "../../gen/drive/v1/file_pb.js";
import type { Deps } from "../deps.js";
import { commitVersion } from "../files/commit-version.js";
import { restoreRevision } from "../files/restore.js";
import { MAX_CHUNKS_PER_PAGE } from "../../shared/rules/chunking.js";
import { invalid } from "../errors.js";
import { chunkPage, findDownload, listDeleted, listFiles, listVersions, statFile, type DeletedRow } from "../files/file-queries.js";
import { checkPath } from "../uploads/validate-upload.js";
import { callerOf, originOf } from "./caller.js";
import { downloadResponse, fileInfo, toNumber, versionInfo } from "./convert.js";
import { checkPrefix, pageSize, revisionToken } from "./request-limits.js";
import { decodeListToken, encodeListToken } from "./list-files-token.js";
import { encodeCursor } from "../journal/cursor.js";
import type { Db } from "../metadata/database.js";

export function fileService(deps: Deps): ServiceImpl<typeof FileService> {
  return {
    async stat(req, ctx) {
      checkPath(req.path);
      return { file: fileInfo(await statFile(deps.db, callerOf(ctx).namespaceId, req.path)) };
    },

    async listFiles(req, ctx) {
      checkPrefix(req.prefix);
      const caller = callerOf(ctx);
      const limit = pageSize(req.pageSize);
      const token = decodeListToken(req.pageToken, caller.user.id);
      const query = { prefix: req.prefix, after: token.after, limit: limit + 1 };
      // Either listing gives DeletedRow's fields: live heads are their own last live content.
      const list = (db: Db): Promise<DeletedRow[]> => (req.deleted ? listDeleted(db, caller.namespaceId, query) : listFiles(db, caller.namespaceId, query));
      // The first page's rows and the journal's end come from one snapshot, so the cursor matches them exactly.
      const { rows, position } = token.position
        ? { rows: await list(deps.db), position: token.position }
        : await deps.db
            .transaction()
            .setIsolationLevel("repeatable read")
            .setAccessMode("read only")
            .execute(async (tx) => {
              const ns = await tx.selectFrom("namespaces").select("journal_seq").where("id", "=", caller.namespaceId).executeTakeFirstOrThrow();
              return { rows: await list(tx), position: { userId: caller.user.id, seqs: new Map([[caller.namespaceId, ns.journal_seq]]) } };
            });
      const page = rows.slice(0, limit);
      const more = rows.length > limit;
      return {
        files: page.map(fileInfo),
        nextPageToken: more ? encodeListToken(page[page.length - 1]!.path, position) : "",
        cursor: encodeCursor(position),
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
        versions: page.map(versionInfo),
      };
    },

    async restore(req, ctx) {
      checkPath(req.path);
      if (req.revision < 0n) throw invalid("revision must not be negative");
      const caller = callerOf(ctx);
      const restored = await deps.db.transaction().execute((tx) =>
        restoreRevision(tx, {
          namespaceId: caller.namespaceId,
          authorId: caller.user.id,
          path: req.path,
          revision: toNumber(req.revision, "revision"),
          baseRevision: req.baseRevision === undefined ? null : toNumber(req.baseRevision, "base_revision"),
        }),
      );
      return { file: fileInfo(restored.file), restoredFrom: BigInt(restored.restoredFrom) };
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
      return downloadResponse(found, chunks, url, deps.settings.urlTtlSeconds);
    },
  };
}
