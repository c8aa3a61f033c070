import { open } from "node:fs/promises";
import { ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import { Codec } from "../../gen/drive/v1/types_pb.js";
import { PartState, type PartStatus } from "../../gen/drive/v1/upload_pb.js";
import { CliError, hasReason } from "../errors.js";
import type { DriveClient } from "../rpc/drive-client.js";
import type { CompressPolicy } from "./compress/compress-policy.js";
import type { TransferListener } from "./events.js";
import type { PlannedUpload } from "./open-upload.js";
import { chunksOfPart } from "./part-chunks.js";
import { createAgents, destroyAgents, PartHttpError, type EtagKind } from "./part-http.js";
import { PartReporter } from "./part-reporter.js";
import { runParallel } from "./run-parallel.js";
import type { ScannedFile } from "./scan-file.js";
import { sendPart, UploadOver } from "./send-part.js";
import type { TransferOptions } from "./transfer-options.js";
import { UrlBook } from "./url-book.js";
import { vouchParts } from "./vouch-parts.js";

/** A report this run made, kept so that a later round re-reports the same part without sending it again. */
export interface KnownReport {
  etag: string;
  codec: Codec;
  storedSizes: number[];
}

/** What the rounds of one push share. */
export interface PushState {
  /** Reports made, by upload, part number and first chunk (a new plan may number parts otherwise). */
  known: Map<string, KnownReport>;
  /** Emits "start" once per file, with the first round's counts. */
  start: (bytesSkipped: number, partsTotal: number, partsSkipped: number) => void;
  /** Plaintext minus wire bytes of the compressed parts sent, over every round. */
  compressionSaved: number;
}

export interface RoundResult {
  revision: number;
  /** Plaintext bytes of the parts the server fills by copying. */
  bytesCopied: number;
}

const knownKey = (uploadId: string, p: PartStatus) => `${uploadId}/${p.partNumber}/${p.firstChunk}`;

/**
 * One round of a push: vouch for what the store holds unreported, send the
 * client parts still pending, report them, complete. The server's copy
 * parts are its own: their bytes count as copied, and as skipped.
 */
export async function pushRound(
  client: DriveClient,
  opts: TransferOptions & { local: string },
  scan: ScannedFile,
  upload: PlannedUpload,
  policy: CompressPolicy,
  state: PushState,
  emit: TransferListener,
): Promise<RoundResult> {
  const { uploadId, parts } = upload;
  const clientParts = parts.filter((p) => !p.serverCopy);
  const bytesCopied = parts.filter((p) => p.serverCopy).reduce((s, p) => s + Number(p.size), 0);
  const unvouched = clientParts.filter((p) => p.state !== PartState.STORED && p.storedEtag);

  // A part this run already reported, stored with the ETag it got back, needs only its report again.
  const vouched = new Map<number, KnownReport>();
  for (const p of unvouched) {
    const k = state.known.get(knownKey(uploadId, p));
    if (k && k.etag === p.storedEtag) vouched.set(p.partNumber, k);
  }
  const read = await vouchParts(
    opts.local,
    unvouched.filter((p) => !vouched.has(p.partNumber)).map((p) => ({ partNumber: p.partNumber, chunks: chunksOfPart(scan.chunks, toSpan(p)), storedEtag: p.storedEtag })),
    opts.signal,
  );
  for (const [n, etag] of read) vouched.set(n, { etag, codec: Codec.NONE, storedSizes: [] });

  const pending = clientParts.filter((p) => p.state !== PartState.STORED && !vouched.has(p.partNumber));
  const skipped = parts.filter((p) => p.serverCopy || p.state === PartState.STORED || vouched.has(p.partNumber));
  state.start(
    skipped.reduce((s, p) => s + Number(p.size), 0),
    parts.length,
    skipped.length,
  );
  emit({ type: "phase", phase: "transfer" });

  const done = new Set<number>();
  const urls = new UrlBook(
    async (partNumbers) => {
      const r = await client.uploads.presignParts({ uploadId, partNumbers }, { signal: opts.signal });
      return { urls: r.urls, expiresInSeconds: Number(r.urlExpiresInSeconds) };
    },
    () => pending.map((p) => p.partNumber).filter((n) => !done.has(n)),
    Math.max(64, opts.concurrency * 4),
  );
  urls.add(upload.urls, upload.urlExpiresInSeconds);
  const reporter = new PartReporter(async (reports) => {
    await client.uploads.reportParts({ uploadId, parts: reports }, { signal: opts.signal });
  });
  const byNumber = new Map(parts.map((p) => [p.partNumber, p]));
  const report = (partNumber: number, r: KnownReport) => {
    state.known.set(knownKey(uploadId, byNumber.get(partNumber)!), r);
    reporter.add(partNumber, r.etag, r.codec, r.storedSizes);
  };
  for (const [partNumber, r] of vouched) report(partNumber, r);
  const agents = createAgents(opts.concurrency);
  const etags: EtagKind = { kind: "unknown" };
  const fh = await open(opts.local, "r");
  const lastPart = parts.length;

  try {
    try {
      await runParallel(
        pending,
        opts.concurrency,
        async (part, signal) => {
          const sender = { opts, file: opts.local, fh, urls, agents, etags, policy, emit };
          const sent = await sendPart(sender, part.partNumber, chunksOfPart(scan.chunks, toSpan(part)), part.partNumber === lastPart, signal);
          done.add(part.partNumber);
          if (sent.codec === Codec.ZSTD) state.compressionSaved += Number(part.size) - sent.wireBytes;
          report(part.partNumber, sent);
        },
        opts.signal,
      );
      // Never skipped: a lost report would come back from CompleteUpload as unconfirmed parts.
      await reporter.flush();
    } catch (err) {
      if (err instanceof PartHttpError && err.kind === "mismatch") {
        // The store may hold bytes of a file that no longer is: drop the whole upload.
        await client.uploads.abortUpload({ uploadId }).catch(() => undefined);
        throw new CliError("integrity", err.message, { cause: err });
      }
      if (err instanceof PartHttpError && err.kind === "untrusted") {
        // Sent again and again, and stored otherwise each time: a link or store that alters bytes. Nothing was committed.
        throw new CliError("integrity", `${err.message}, on every try; nothing was committed`, { cause: err });
      }
      // Completed by another push sharing this upload, or gone: CompleteUpload tells which.
      const over = err instanceof UploadOver || hasReason(err, ErrorReason.UPLOAD_COMPLETED) || hasReason(err, ErrorReason.UPLOAD_NOT_FOUND);
      if (!over || opts.signal.aborted) throw err;
    }
    emit({ type: "phase", phase: "commit" });
    const completed = await client.uploads.completeUpload({ uploadId }, { signal: opts.signal });
    return { revision: Number(completed.file?.revision ?? 0), bytesCopied };
  } finally {
    reporter.close();
    destroyAgents(agents);
    await fh.close();
  }
}

function toSpan(p: PartStatus): { firstChunk: number; chunkCount: number } {
  return { firstChunk: Number(p.firstChunk), chunkCount: p.chunkCount };
}
