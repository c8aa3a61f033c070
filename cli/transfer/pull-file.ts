import { rm, type FileHandle } from "node:fs/promises";
import type { Writable } from "node:stream";
import { hex } from "../../shared/rules/content-hash.js";
import { CliError } from "../errors.js";
import type { DriveClient } from "../rpc/drive-client.js";
import type { TransferListener } from "./events.js";
import { PartHttpError } from "./part-http.js";
import type { ZstdDecoder } from "./pull/decode-chunk.js";
import { listDownload, type HashKind } from "./pull/download-list.js";
import { findLocalChunks, type ChunkScanner } from "./pull/find-local-chunks.js";
import { openCandidates, type LocalRef, type LocalSource } from "./pull/local-sources.js";
import { defaultScanner } from "./pull/local-scanner.js";
import { createPartial, partialName, renameIntoPlace, takeLeftover } from "./pull/partial-file.js";
import { planTasks } from "./pull/plan-tasks.js";
import { fileSink, openSpool, streamSink, type PullSink } from "./pull/sinks.js";
import { defaultTuning, transferChunks, type PullTuning } from "./pull/transfer-chunks.js";
import type { TransferOptions } from "./transfer-options.js";

export type { PullTuning } from "./pull/transfer-chunks.js";

export interface PullRequest extends TransferOptions {
  remote: string;
  /** Destination file path (already resolved from a folder, if one was given); ignored with `output`. */
  local: string;
  /** Write the bytes here, in order, instead of to a file: `drive pull REMOTE -`. */
  output?: Writable;
  /** A specific revision; 0 for the current one. */
  revision?: number;
  /** A chunk GET that moves no byte this long is retried. */
  readTimeoutMs?: number;
  /** Take chunks from local files instead of fetching them (default true; never with `output`). */
  reuse?: boolean;
  /** Cuts local files into chunks; default the push's own chunker. null scans nothing but a leftover. */
  scanner?: ChunkScanner | null;
  tuning?: Partial<PullTuning>;
  zstd?: () => Promise<ZstdDecoder>;
  /** For tests: runs once local files are scanned, before any chunk is read from one. */
  afterScan?: () => Promise<void>;
  /** Runs on the verified temporary file right before it is renamed onto `local` (sync: attributes, and the check that the destination is still what it replaces); a throw leaves `local` untouched. */
  beforeRename?: (temp: string, content: { contentHash: string; kind: HashKind }) => Promise<void>;
}

export interface PullResult {
  revision: number;
  contentHash: string;
  contentHashKind: HashKind;
  size: number;
  /** Plaintext bytes taken from local files instead of the network. */
  bytesReused: number;
}

/**
 * Downloads one version, verified, into a temporary file beside the
 * destination, then renames it into place (or, with `output`, writes it
 * to a stream in order). Memory stays bounded whatever the file's size.
 *
 * 1. The chunk list comes a page at a time (listDownload).
 * 2. Local files that may hold wanted chunks are scanned: a leftover of an
 *    interrupted pull of this content, the destination (the old version),
 *    and a few neighbours in its folder (candidateSources).
 * 3. Each chunk is then read from where it was found, copied from an
 *    earlier chunk of the same file, or fetched, neighbours merged into one
 *    ranged GET of their stored bytes (planTasks); zstd chunks are decoded.
 * 4. Every chunk's plaintext must hash to its BLAKE3 before it is used: a
 *    local chunk when it is read (a file changed since its scan is caught
 *    here, and the chunk fetched instead), a fetched one as it lands.
 * 5. Verified chunks pass a bounded reorder window (OrderedWindow) into the
 *    file in order, and through a BLAKE3 of the whole file, which must
 *    equal the content hash before the rename: nothing is read twice.
 *
 * The destination changes only by that rename, so a failure or a kill
 * leaves it as it was. The temporary file is opened once, safely (see
 * partial-file.ts), and a chunk is written only at its own offset once it
 * verified: a lying store can neither write outside a chunk nor get an
 * unverified byte counted.
 */
export async function pullFile(client: DriveClient, req: PullRequest, emit: TransferListener): Promise<PullResult> {
  const file = await listDownload(client, req.remote, req.revision ?? 0, req.signal);
  const expected = hex(file.contentHash);
  const toStream = !!req.output;
  const tuning: PullTuning = { ...defaultTuning(req.concurrency), ...req.tuning };
  const sources: LocalSource[] = [];
  let temp: string | null = null;
  let out: Awaited<ReturnType<typeof createPartial>> | null = null;
  let bytesReused = 0;
  try {
    let found = new Map<number, LocalRef>();
    if (!toStream) {
      temp = partialName(req.local, expected);
      const leftover = await takeLeftover(temp);
      if (leftover) sources.push(leftover);
      out = await createPartial(temp);
      if (req.reuse !== false && file.chunks.length > 0) {
        emit({ type: "phase", phase: "verify" });
        const cut = file.kind === "blake3" ? await openCandidates(req.local, file) : [];
        sources.push(...cut);
        const scanner = req.scanner === undefined ? defaultScanner() : req.scanner;
        found = await findLocalChunks(file.chunks, { aligned: leftover ? [leftover] : [], cut }, scanner, {
          signal: req.signal,
          onHashed: (n) => emit({ type: "hashed", bytes: n }),
        });
      }
    }
    await req.afterScan?.();

    const tasks = planTasks(file.chunks, found, { getCap: tuning.getCap, plainCap: 2 * tuning.getCap, bufferLimit: tuning.bufferLimit, copyWithin: !toStream });
    const skipped = tasks.filter((t) => t.kind === "local" || t.kind === "copy");
    emit({
      type: "start",
      op: "pull",
      remote: req.remote,
      local: toStream ? "-" : req.local,
      bytesTotal: file.size,
      partsTotal: file.chunks.length,
      // What the plan takes from local files; a chunk found changed when it is read is fetched, and counted, too.
      bytesSkipped: skipped.reduce((s, t) => s + (t.plainEnd - t.plainStart), 0),
      partsSkipped: skipped.length,
    });
    emit({ type: "phase", phase: "transfer" });

    const spools = new Map<number, FileHandle>();
    const sink: PullSink = toStream
      ? streamSink(req.output!, file.chunks, file.kind === "blake3", async (i) => {
          await spools.get(i)?.close();
          spools.delete(i);
        })
      : fileSink(out!.fh, file.chunks, file.kind === "blake3");
    try {
      await transferChunks(client, req, file, tasks, sink, emit, {
        tempFd: out?.fh.fd,
        streamTarget: async (i) => {
          if (out) return { fd: out.fh.fd, position: file.chunks[i]!.offset };
          const spool = await openSpool();
          spools.set(i, spool);
          return { fd: spool.fd, position: 0 };
        },
        onReused: (n) => void (bytesReused += n),
      });
      emit({ type: "phase", phase: "commit" });
      // A BLAKE3 content hash is checked over the bytes as they went out; the old kind was checked with the list.
      const digest = sink.digest();
      if (digest && !digest.equals(file.contentHash)) {
        if (temp) await rm(temp, { force: true }); // every chunk verified; the list itself is wrong, so keep nothing
        throw new CliError("integrity", `${req.remote}: every chunk verified, but the file's BLAKE3 ${hex(digest)} is not its content hash ${expected}; the server's chunk list is wrong`);
      }
      await sink.settle();
    } catch (err) {
      await sink.idle();
      for (const s of spools.values()) await s.close().catch(() => undefined);
      throw err;
    }
  } catch (err) {
    if (err instanceof PartHttpError && (err.kind === "mismatch" || err.kind === "untrusted")) {
      const where = toStream ? "nothing past the last verified chunk was written" : `nothing was written to ${req.local}`;
      throw new CliError("integrity", `${req.remote}: ${err.message}; the store's copy is damaged or it lied, ${where}`, { cause: err });
    }
    throw err;
  } finally {
    await out?.fh.close();
    for (const s of sources) await s.fh.close().catch(() => undefined);
  }
  if (out && temp) {
    try {
      await req.beforeRename?.(temp, { contentHash: expected, kind: file.kind });
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    await renameIntoPlace(out, temp, req.local);
  }
  emit({ type: "done", revision: Number(file.revision), contentHash: expected, deduplicated: false, bytesReused });
  return { revision: Number(file.revision), contentHash: expected, contentHashKind: file.kind, size: file.size, bytesReused };
}
