import { open, stat } from "node:fs/promises";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import { hex } from "../../shared/rules/content-hash.js";
import { MIN_PART_SIZE, partSizeError } from "../../shared/rules/part-rules.js";
import { CliError, errorInfoOf, toCliError } from "../errors.js";
import type { DriveClient } from "../rpc/drive-client.js";
import { CompressPolicy, type CompressMode } from "./compress/compress-policy.js";
import { sampleRatio } from "./compress/sample.js";
import type { TransferListener } from "./events.js";
import { openUpload } from "./open-upload.js";
import { DEFAULT_PART_SIZE } from "./plan-parts.js";
import { pushRound, type PushState } from "./push-round.js";
import { scanFileCached } from "./scan-cache.js";
import type { ScannedFile } from "./scan-file.js";
import type { TransferOptions } from "./transfer-options.js";

export interface PushRequest extends TransferOptions {
  /** The file to read. */
  local: string;
  remote: string;
  /** Target plaintext size of the parts the client sends; the server grows it past 10,000 parts. Default: from the file's compressibility. */
  partSize?: number;
  /** Commit only if the remote is still at this revision (0: absent). */
  baseRevision?: number;
  /** Default "auto" (compress-policy.ts). */
  compress?: CompressMode;
  /** The source as the user named it, for events: "-" for stdin. Default `local`. */
  source?: string;
  /** The file's scan, when the caller made it already (a piped push scans as it spools). */
  scan?: ScannedFile;
  /** Told each upload id as soon as it is open: a piped push aborts it when it fails. */
  onUploadId?: (uploadId: string) => void;
  /** Permission bits (mode & 0o7777) and modification time to record with the version; absent: not said. */
  mode?: number;
  mtime?: Timestamp;
}

export interface PushResult {
  revision: number;
  contentHash: string;
  size: number;
  /** The server already held this content: no bytes moved. */
  deduplicated: boolean;
  /** Plaintext bytes the server filled by copying what it already stored. */
  bytesCopied: number;
  /** Plaintext minus wire bytes of the parts sent compressed. */
  bytesCompressionSaved: number;
}

/**
 * Rounds of CreateUpload, send, complete. A round ends early when
 * CompleteUpload names parts it cannot use (a report that was lost, a part
 * that went missing) or the upload vanished; the next round resumes or
 * restarts it with the state the server reads from the store.
 */
const MAX_ROUNDS = 3;

/** Samples of the whole file that pick the part size (compress-policy.ts, partSizeFor). */
const FILE_SAMPLES = 8;

/**
 * Uploads one file: scan (content-defined chunks, BLAKE3 of each and of the
 * whole), declare the chunks, send the client parts of the server's plan in
 * parallel straight to the store (compressed where it pays), complete. The
 * server fills the parts whose bytes it already stores by copying them.
 * Run again after any crash, it resumes: the server finds the open upload
 * by content and reports which parts the store already holds. Two pushes of
 * the same content to the same path share that upload; whichever completes
 * it, both end with its version.
 */
export async function pushFile(client: DriveClient, req: PushRequest, emit: TransferListener): Promise<PushResult> {
  const source = req.source ?? req.local;
  let scan = req.scan;
  if (!scan) {
    // The size, so that hashing shows % and ETA; a stat that fails leaves the scan to say why.
    emit({ type: "phase", phase: "hash", bytesTotal: (await stat(req.local).catch(() => null))?.size });
    // An unchanged file is not read again (scan-cache.ts); a stale entry is impossible short of a changed ctime.
    scan = await scanFileCached(req.local, { signal: req.signal, onHashed: (bytes) => emit({ type: "hashed", bytes }) });
  }
  const policy = new CompressPolicy(req.compress ?? "auto");
  const partSize = await choosePartSize(req, scan, policy);
  const contentHash = hex(scan.contentHash);
  const size = scan.size;
  let started = false;
  const state: PushState = {
    known: new Map(),
    compressionSaved: 0,
    start: (bytesSkipped, partsTotal, partsSkipped) => {
      if (started) return; // one file, however many rounds
      started = true;
      emit({ type: "start", op: "push", remote: req.remote, local: source, bytesTotal: size, partsTotal, bytesSkipped, partsSkipped });
    },
  };

  for (let round = 1; ; round++) {
    const opened = await openUpload(
      client,
      { remote: req.remote, baseRevision: req.baseRevision, partSize, presignWindow: req.concurrency * 4, signal: req.signal, mode: req.mode, mtime: req.mtime },
      scan,
    );
    if (opened.committed) {
      state.start(size, 0, 0);
      const revision = Number(opened.committed.revision);
      emit({ type: "done", revision, contentHash, deduplicated: true, bytesCopied: 0, bytesCompressionSaved: 0 });
      return { revision, contentHash, size, deduplicated: true, bytesCopied: 0, bytesCompressionSaved: 0 };
    }
    req.onUploadId?.(opened.uploadId);
    try {
      const r = await pushRound(client, req, scan, opened, policy, state, emit);
      const saved = state.compressionSaved;
      emit({ type: "done", revision: r.revision, contentHash, deduplicated: false, bytesCopied: r.bytesCopied, bytesCompressionSaved: saved });
      return { revision: r.revision, contentHash, size, deduplicated: false, bytesCopied: r.bytesCopied, bytesCompressionSaved: saved };
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

/**
 * The part size to ask for: --part-size as given, else one that keeps
 * compressed parts well over S3's 5 MiB minimum, from a few samples of the
 * file (compress-policy.ts). Resuming an open upload keeps that upload's plan whatever this
 * says.
 */
async function choosePartSize(req: PushRequest, scan: ScannedFile, policy: CompressPolicy): Promise<number> {
  if (req.partSize !== undefined) {
    const why = partSizeError(scan.size, req.partSize);
    if (why) throw new CliError("usage", why);
    return req.partSize;
  }
  // Up to one minimum part the plan has one part, whatever the size asked.
  if (policy.mode === "never" || scan.size <= MIN_PART_SIZE) return DEFAULT_PART_SIZE;
  const fh = await open(req.local, "r");
  try {
    return policy.partSizeFor(await sampleRatio(fh, 0, scan.size, FILE_SAMPLES, req.signal), DEFAULT_PART_SIZE);
  } finally {
    await fh.close();
  }
}
