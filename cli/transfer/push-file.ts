import { Code, ConnectError } from "@connectrpc/connect";
import { hex } from "../../server/core/content-hash.js";
import { PartState } from "../../gen/drive/v1/upload_pb.js";
import { CliError } from "../errors.js";
import type { DriveClient } from "../rpc/drive-client.js";
import type { TransferListener } from "./events.js";
import { createAgents, destroyAgents, PartHttpError, putPart, type EtagKind } from "./part-http.js";
import { PartReporter } from "./part-reporter.js";
import { partSizeFor } from "./plan-parts.js";
import { runParallel } from "./run-parallel.js";
import { scanFile } from "./scan-file.js";
import { sendWithRetry, type TransferOptions } from "./transfer-options.js";
import { UrlBook } from "./url-book.js";
import { vouchParts } from "./vouch-parts.js";

export interface PushRequest extends TransferOptions {
  local: string;
  remote: string;
  /** Part size to plan with; grown when the file would need over 10,000 parts. */
  partSize?: number;
  /** Commit only if the remote is still at this revision (0: absent). */
  baseRevision?: number;
}

export interface PushResult {
  revision: number;
  contentHash: string;
  size: number;
  /** The server already held this content: no bytes moved. */
  deduplicated: boolean;
}

/**
 * Uploads one file: scan, plan with the server, send the missing parts in
 * parallel straight to the store, complete. Run again after any crash, it
 * resumes: the server finds the open upload by content and reports which
 * parts the store already holds.
 */
export async function pushFile(client: DriveClient, req: PushRequest, emit: TransferListener): Promise<PushResult> {
  emit({ type: "phase", phase: "hash" });
  const scan = await scanFile(req.local, (size) => partSizeFor(size, req.partSize), {
    signal: req.signal,
    onHashed: (bytes) => emit({ type: "hashed", bytes }),
  });

  const created = await client.uploads.createUpload(
    {
      path: req.remote,
      size: BigInt(scan.size),
      contentHash: scan.contentHash,
      chunks: scan.chunks.map((c) => ({ size: BigInt(c.size), hash: c.hash })),
      baseRevision: req.baseRevision === undefined ? undefined : BigInt(req.baseRevision),
      presignWindow: req.concurrency * 4,
    },
    { signal: req.signal },
  );
  const contentHash = hex(scan.contentHash);

  if (created.committed) {
    emit({ type: "start", op: "push", remote: req.remote, local: req.local, bytesTotal: scan.size, partsTotal: scan.chunks.length, bytesSkipped: scan.size, partsSkipped: scan.chunks.length });
    const revision = Number(created.committed.revision);
    emit({ type: "done", revision, contentHash, deduplicated: true });
    return { revision, contentHash, size: scan.size, deduplicated: true };
  }

  const offsets = scan.chunks.map((_, i) => i * (scan.chunks[0]?.size ?? 0));
  const vouched = await vouchParts(
    req.local,
    created.parts
      .filter((p) => p.state !== PartState.STORED && p.storedEtag)
      .map((p) => ({ ...scan.chunks[p.partNumber - 1]!, partNumber: p.partNumber, offset: offsets[p.partNumber - 1]!, storedEtag: p.storedEtag })),
    req.signal,
  );
  const pending = created.parts.filter((p) => p.state !== PartState.STORED && !vouched.has(p.partNumber)).map((p) => p.partNumber);
  const skippedBytes = created.parts
    .filter((p) => p.state === PartState.STORED || vouched.has(p.partNumber))
    .reduce((sum, p) => sum + scan.chunks[p.partNumber - 1]!.size, 0);
  emit({
    type: "start",
    op: "push",
    remote: req.remote,
    local: req.local,
    bytesTotal: scan.size,
    partsTotal: scan.chunks.length,
    bytesSkipped: skippedBytes,
    partsSkipped: scan.chunks.length - pending.length,
  });
  emit({ type: "phase", phase: "transfer" });

  const uploadId = created.uploadId;
  const done = new Set<number>();
  const urls = new UrlBook(
    async (partNumbers) => {
      const r = await client.uploads.presignParts({ uploadId, partNumbers }, { signal: req.signal });
      return { urls: r.urls, expiresInSeconds: Number(r.urlExpiresInSeconds) };
    },
    () => pending.filter((n) => !done.has(n)),
    Math.max(64, req.concurrency * 4),
  );
  urls.add(created.urls, Number(created.urlExpiresInSeconds));
  const reporter = new PartReporter(async (parts) => {
    await client.uploads.reportParts({ uploadId, parts }, { signal: req.signal });
  });
  for (const [partNumber, etag] of vouched) reporter.add(partNumber, etag);
  const agents = createAgents(req.concurrency);
  const etags: EtagKind = { kind: "unknown" };

  try {
    await runParallel(
      pending,
      req.concurrency,
      async (partNumber, signal) => {
        const chunk = scan.chunks[partNumber - 1]!;
        emit({ type: "part_start", partNumber, size: chunk.size });
        const etag = await sendWithRetry(req, partNumber, emit, signal, async (onBytes) => {
          const target = await urls.get(partNumber);
          try {
            return await putPart({
              ...target,
              file: req.local,
              offset: offsets[partNumber - 1]!,
              size: chunk.size,
              hash: chunk.hash,
              agents,
              signal,
              onBytes,
              etags,
            });
          } catch (err) {
            if (err instanceof PartHttpError && err.kind === "expired") urls.invalidate(partNumber);
            throw err;
          }
        });
        done.add(partNumber);
        reporter.add(partNumber, etag);
        emit({ type: "part_done", partNumber, size: chunk.size });
      },
      req.signal,
    );
    await reporter.flush();
    emit({ type: "phase", phase: "commit" });
    const completed = await client.uploads.completeUpload({ uploadId }, { signal: req.signal });
    const revision = Number(completed.file?.revision ?? 0);
    emit({ type: "done", revision, contentHash, deduplicated: false });
    return { revision, contentHash, size: scan.size, deduplicated: false };
  } catch (err) {
    if (err instanceof PartHttpError && err.kind === "mismatch") {
      // The store now holds bytes of a file that no longer is: drop the whole upload.
      await client.uploads.abortUpload({ uploadId }).catch(() => undefined);
      throw new CliError("integrity", err.message, { cause: err });
    }
    if (err instanceof ConnectError && err.code === Code.FailedPrecondition) {
      throw new CliError("conflict", `${req.remote}: ${err.rawMessage}`, { cause: err });
    }
    throw err;
  } finally {
    reporter.close();
    destroyAgents(agents);
  }
}
