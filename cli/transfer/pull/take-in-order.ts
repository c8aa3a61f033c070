import type { RemoteChunk } from "./download-list.js";
import type { OrderedSink, Verified } from "./ordered-window.js";
import { readLocalChunk, readOwnChunk } from "./read-local-chunk.js";
import type { PullSink } from "./sinks.js";

export interface InOrderOptions {
  chunks: readonly RemoteChunk[];
  sink: PullSink;
  /** The temporary file being written, where earlier chunks are read back from; absent for stdout. */
  tempFd?: number;
  /** Fetches a chunk after all (its local copy changed), and may fetch the next ones from the same file with it. */
  fetchInstead(index: number): Promise<Verified>;
  onReused(bytes: number): void;
}

/**
 * The window's sink: each chunk in file order. Chunks to take from a local
 * file, or from earlier in the file being written, are read here, at their
 * turn, into one scratch buffer, and checked against their hash: they wait
 * in the window without memory, and the bytes read are the bytes checked
 * and written. One that no longer checks is fetched, still in order.
 */
export function takeInOrder(opts: InOrderOptions): OrderedSink {
  let scratch: Buffer | null = null;
  const scratchFor = (size: number) => (scratch && scratch.length >= size ? scratch : (scratch = Buffer.allocUnsafeSlow(Math.max(size, 4 * 1024 * 1024))));
  return async (index, pending) => {
    const c = opts.chunks[index]!;
    let chunk: Verified;
    if ("local" in pending || "copyFrom" in pending) {
      const bytes =
        "local" in pending
          ? await readLocalChunk(pending.local, c, scratchFor(c.size))
          : await readOwnChunk(opts.tempFd!, opts.chunks[pending.copyFrom]!.offset, c, scratchFor(c.size));
      if (bytes) opts.onReused(c.size);
      chunk = bytes ? { bytes } : await opts.fetchInstead(index);
    } else {
      chunk = pending;
    }
    try {
      await opts.sink.take(index, chunk);
    } finally {
      if ("bytes" in chunk) chunk.release?.();
    }
  };
}
