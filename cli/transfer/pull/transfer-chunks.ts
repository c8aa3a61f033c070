import type { DriveClient } from "../../rpc/drive-client.js";
import type { TransferListener } from "../events.js";
import { createAgents, defaultReadTimeoutMs, destroyAgents } from "../part-http.js";
import type { PullRequest } from "../pull-file.js";
import { BufferPool } from "./buffer-pool.js";
import type { RemoteFile } from "./download-list.js";
import { fetchChunks, type FetchContext } from "./fetch-chunks.js";
import { OrderedWindow, type Verified } from "./ordered-window.js";
import type { PullTask } from "./plan-tasks.js";
import { runTasks, type TaskIo } from "./run-tasks.js";
import type { PullSink } from "./sinks.js";
import { takeInOrder } from "./take-in-order.js";

const MiB = 1024 * 1024;

export interface PullTuning {
  /** Plaintext bytes past the first unwritten chunk that may be fetched ahead (see OrderedWindow). */
  windowBytes: number;
  /** Most stored bytes one GET asks for. */
  getCap: number;
  /** Chunks bigger than this (only versions from before content-defined chunking have them) go straight to disk. */
  bufferLimit: number;
}

/**
 * 8 MiB per GET, and a window of half a GET per lane, at least 32 MiB, at
 * most 256 MiB. Measured on a 1 GiB pull on the embedded default (-c 6): a
 * 48 MiB window peaked at 150 MiB resident, 32 MiB at 135 MiB, in about the
 * same time; four or five 8 MiB GETs in flight keep a store busy.
 */
export function defaultTuning(concurrency: number): PullTuning {
  return { getCap: 8 * MiB, windowBytes: Math.min(256 * MiB, Math.max(32 * MiB, concurrency * 4 * MiB)), bufferLimit: 16 * MiB };
}

/** The GETs, local reads and copies of one pull, through the window into the sink. */
export async function transferChunks(
  client: DriveClient,
  req: PullRequest,
  file: RemoteFile,
  tasks: readonly PullTask[],
  sink: PullSink,
  emit: TransferListener,
  io: TaskIo & { tempFd?: number; onReused(bytes: number): void },
): Promise<void> {
  const tuning = { ...defaultTuning(req.concurrency), ...req.tuning };
  const offsets = [...file.chunks.map((c) => c.offset), file.size];
  // The sink failing (stdout's reader gone) stops every task at once, not at its next delivery.
  const stop = new AbortController();
  const onAbort = () => stop.abort(req.signal.reason);
  req.signal.addEventListener("abort", onAbort, { once: true });
  let url = file.url;
  let refreshing: Promise<void> | null = null;
  const agents = createAgents(req.concurrency, req.readTimeoutMs ?? defaultReadTimeoutMs());
  const ctx: FetchContext = {
    chunks: file.chunks,
    url: () => url,
    // One refresh for every GET that found the URL expired; first_chunk past the end asks for no chunks.
    refresh: () =>
      (refreshing ??= client.files
        .getDownload({ path: req.remote, revision: file.revision, firstChunk: BigInt(file.chunks.length) }, { signal: req.signal })
        .then((r) => void (url = r.url || url))
        .finally(() => (refreshing = null))),
    agents,
    opts: { concurrency: req.concurrency, partAttempts: req.partAttempts, signal: stop.signal },
    emit,
    zstd: req.zstd,
    // Enough slots for every GET the window lets run, so that none is allocated twice.
    pool: new BufferPool(tuning.getCap, Math.ceil(tuning.windowBytes / tuning.getCap) + req.concurrency + 1),
  };
  // A local chunk that changed is fetched at its turn, with the chunks after it that wait on the same
  // (now changed) file, in one GET: a file another writer rewrote costs GETs of 8 MiB, not of a chunk.
  const fetchInstead = async (index: number): Promise<Verified> => {
    const chunks = file.chunks;
    let end = index + 1;
    for (let stored = chunks[index]!.storedSize; end < chunks.length; end++) {
      const next = window.peek(end);
      const c = chunks[end]!;
      const prev = chunks[end - 1]!;
      if (!next || !("local" in next) || !next.local.source.changed || c.size > tuning.bufferLimit) break;
      if (prev.storedOffset + prev.storedSize !== c.storedOffset || stored + c.storedSize > tuning.getCap) break;
      stored += c.storedSize;
    }
    let first: Verified | null = null;
    await fetchChunks(ctx, index, end, stop.signal, (i, v) => (i === index ? (first = v) : window.replace(i, v)));
    return first!;
  };
  const take = takeInOrder({ chunks: file.chunks, sink, tempFd: io.tempFd, fetchInstead, onReused: io.onReused });
  const window = new OrderedWindow(offsets, tuning.windowBytes, take);
  window.done().catch((err: unknown) => stop.abort(err));
  try {
    await runTasks(tasks, ctx, window, io, stop.signal);
    await window.done();
  } catch (err) {
    window.fail(err);
    // The sink's own failure is the story, not the aborts it caused.
    throw stop.signal.aborted && !req.signal.aborted ? stop.signal.reason : err;
  } finally {
    req.signal.removeEventListener("abort", onAbort);
    destroyAgents(agents);
  }
}
