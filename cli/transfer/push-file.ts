import { ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import { PartState, type CreateUploadResponse } from "../../gen/drive/v1/upload_pb.js";
import { hex } from "../../shared/rules/content-hash.js";
import { CliError, errorInfoOf, hasReason, toCliError } from "../errors.js";
import type { DriveClient } from "../rpc/drive-client.js";
import type { TransferListener } from "./events.js";
import { createAgents, destroyAgents, PartHttpError, putPart, type EtagKind } from "./part-http.js";
import { PartReporter } from "./part-reporter.js";
import { partSizeFor } from "./plan-parts.js";
import { runParallel } from "./run-parallel.js";
import { scanFile, type ScannedFile } from "./scan-file.js";
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
 * Rounds of CreateUpload, send, complete. A round ends early when
 * CompleteUpload names parts it cannot use (a report that was lost, a part
 * that went missing) or the upload vanished; the next round resumes or
 * restarts it with the state the server reads from the store.
 */
const MAX_ROUNDS = 3;

/** This upload is over for us: completed (maybe by another push sharing it), aborted or expired. */
class UploadOver extends Error {}

/**
 * Uploads one file: scan, plan with the server, send the missing parts in
 * parallel straight to the store, complete. Run again after any crash, it
 * resumes: the server finds the open upload by content and reports which
 * parts the store already holds. Two pushes of the same content to the same
 * path share that upload; whichever completes it, both end with its version.
 */
export async function pushFile(client: DriveClient, req: PushRequest, emit: TransferListener): Promise<PushResult> {
  emit({ type: "phase", phase: "hash" });
  const scan = await scanFile(req.local, (size) => partSizeFor(size, req.partSize), {
    signal: req.signal,
    onHashed: (bytes) => emit({ type: "hashed", bytes }),
  });
  const contentHash = hex(scan.contentHash);
  const known = new Map<number, string>(); // ETags this run sent or vouched for, by part
  let started = false;
  const start = (bytesSkipped: number, partsSkipped: number) => {
    if (started) return; // one file, however many rounds
    started = true;
    emit({ type: "start", op: "push", remote: req.remote, local: req.local, bytesTotal: scan.size, partsTotal: scan.chunks.length, bytesSkipped, partsSkipped });
  };

  for (let round = 1; ; round++) {
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
    if (created.committed) {
      start(scan.size, scan.chunks.length);
      const revision = Number(created.committed.revision);
      emit({ type: "done", revision, contentHash, deduplicated: true });
      return { revision, contentHash, size: scan.size, deduplicated: true };
    }
    try {
      const revision = await pushRound(client, req, scan, created, known, start, emit);
      emit({ type: "done", revision, contentHash, deduplicated: false });
      return { revision, contentHash, size: scan.size, deduplicated: false };
    } catch (err) {
      const reason = errorInfoOf(err)?.reason;
      const again = reason === ErrorReason.PARTS_MISSING || reason === ErrorReason.PARTS_UNCONFIRMED || reason === ErrorReason.UPLOAD_NOT_FOUND;
      if (!again || req.signal.aborted) throw err;
      if (round >= MAX_ROUNDS) {
        // The kind follows the reason (cli/errors.ts); the message says the push already tried.
        const e = toCliError(err);
        throw new CliError(e.kind, `${req.remote}: still refused after ${round} rounds: ${e.message}`, { cause: err, reason: e.reason });
      }
      // Next round: CreateUpload resumes the upload (or opens a new one) and says which parts to send.
    }
  }
}

/** Sends what the upload lacks, reports it and completes; returns the committed revision. */
async function pushRound(
  client: DriveClient,
  req: PushRequest,
  scan: ScannedFile,
  created: CreateUploadResponse,
  known: Map<number, string>,
  start: (bytesSkipped: number, partsSkipped: number) => void,
  emit: TransferListener,
): Promise<number> {
  const uploadId = created.uploadId;
  const offsets = scan.chunks.map((_, i) => i * (scan.chunks[0]?.size ?? 0));
  const unvouched = created.parts.filter((p) => p.state !== PartState.STORED && p.storedEtag);
  // A part this run already sent, stored with the ETag it got back, needs only its report again.
  const vouched = new Map(unvouched.filter((p) => known.get(p.partNumber) === p.storedEtag).map((p) => [p.partNumber, p.storedEtag]));
  const read = await vouchParts(
    req.local,
    unvouched
      .filter((p) => !vouched.has(p.partNumber))
      .map((p) => ({ ...scan.chunks[p.partNumber - 1]!, partNumber: p.partNumber, offset: offsets[p.partNumber - 1]!, storedEtag: p.storedEtag })),
    req.signal,
  );
  for (const [n, etag] of read) vouched.set(n, etag);
  const pending = created.parts.filter((p) => p.state !== PartState.STORED && !vouched.has(p.partNumber)).map((p) => p.partNumber);
  const skippedBytes = created.parts
    .filter((p) => p.state === PartState.STORED || vouched.has(p.partNumber))
    .reduce((sum, p) => sum + scan.chunks[p.partNumber - 1]!.size, 0);
  start(skippedBytes, scan.chunks.length - pending.length);
  emit({ type: "phase", phase: "transfer" });

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
  const report = (partNumber: number, etag: string) => {
    known.set(partNumber, etag);
    reporter.add(partNumber, etag);
  };
  for (const [partNumber, etag] of vouched) report(partNumber, etag);
  const agents = createAgents(req.concurrency);
  const etags: EtagKind = { kind: "unknown" };

  try {
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
              // The store no longer has the upload (NoSuchUpload): someone completed or aborted it.
              if (err instanceof PartHttpError && err.status === 404) throw new UploadOver(`part ${partNumber}: ${err.message}`, { cause: err });
              throw err;
            }
          });
          done.add(partNumber);
          report(partNumber, etag);
          emit({ type: "part_done", partNumber, size: chunk.size });
        },
        req.signal,
      );
      // Never skipped: a lost report would come back from CompleteUpload as unconfirmed parts.
      await reporter.flush();
    } catch (err) {
      if (err instanceof PartHttpError && err.kind === "mismatch") {
        // The store now holds bytes of a file that no longer is: drop the whole upload.
        await client.uploads.abortUpload({ uploadId }).catch(() => undefined);
        throw new CliError("integrity", err.message, { cause: err });
      }
      if (err instanceof PartHttpError && err.kind === "untrusted") {
        // Sent again and again, and stored otherwise each time: a link or store that alters bytes. Nothing was committed.
        throw new CliError("integrity", `${err.message}, on every try; nothing was committed`, { cause: err });
      }
      // Completed by another push sharing this upload, or gone: CompleteUpload tells which.
      const over = err instanceof UploadOver || hasReason(err, ErrorReason.UPLOAD_COMPLETED) || hasReason(err, ErrorReason.UPLOAD_NOT_FOUND);
      if (!over || req.signal.aborted) throw err;
    }
    emit({ type: "phase", phase: "commit" });
    const completed = await client.uploads.completeUpload({ uploadId }, { signal: req.signal });
    return Number(completed.file?.revision ?? 0);
  } finally {
    reporter.close();
    destroyAgents(agents);
  }
}
