import type { MessageInitShape } from "@bufbuild/protobuf";
import type { GetDownloadResponseSchema } from "../../gen/drive/v1/file_pb.js";
import { MAX_CHUNKS_PER_PAGE } from "../../shared/rules/chunking.js";
import type { Deps } from "../deps.js";
import { DriveError } from "../errors.js";
import { findDownloads, firstChunkPages } from "../files/file-queries.js";
import { downloadResponse } from "../rpc/convert.js";

export type DownloadOutcome = { ok: true; download: MessageInitShape<typeof GetDownloadResponseSchema> } | { ok: false; error: DriveError };

/**
 * GetDownloads (tree.proto): GetDownload's answer for the current revision
 * of each path (first chunk page, fresh URL), with two queries for the
 * lot rather than three per path.
 */
export async function getDownloads(deps: Deps, namespaceId: number, paths: ReadonlyArray<string | DriveError>, origin: string): Promise<DownloadOutcome[]> {
  const wanted = paths.filter((p): p is string => typeof p === "string");
  const found = await findDownloads(deps.db, namespaceId, wanted);
  const versions = [...found.values()].flatMap((f) => (f instanceof DriveError ? [] : [f]));
  const pages = await firstChunkPages(
    deps.db,
    versions.map((v) => v.blobId),
    MAX_CHUNKS_PER_PAGE,
  );
  return Promise.all(
    paths.map(async (p): Promise<DownloadOutcome> => {
      if (p instanceof DriveError) return { ok: false, error: p };
      const f = found.get(p)!;
      if (f instanceof DriveError) return { ok: false, error: f };
      const url = f.objectKey
        ? (await deps.store.presignGet({ key: f.objectKey, expiresInSeconds: deps.settings.urlTtlSeconds, origin })).url
        : "";
      return { ok: true, download: downloadResponse(f, pages.get(f.blobId) ?? [], url, deps.settings.urlTtlSeconds) };
    }),
  );
}
