import { Blake3Hasher } from "@napi-rs/blake-hash";
import { Codec } from "../../../gen/drive/v1/types_pb.js";
import type { TransferListener } from "../events.js";
import { getRange, getStoredRange, PartHttpError, type Agents } from "../part-http.js";
import { sendWithRetry, type TransferOptions } from "../transfer-options.js";
import { decodeChunk, type ZstdDecoder } from "./decode-chunk.js";
import type { RemoteChunk } from "./download-list.js";
import type { BufferPool } from "./buffer-pool.js";
import type { Verified } from "./ordered-window.js";

/** What every GET of one pull shares. */
export interface FetchContext {
  chunks: readonly RemoteChunk[];
  /** The current presigned URL; refresh() replaces it when the store says it expired. */
  url(): string;
  refresh(): Promise<void>;
  agents: Agents;
  opts: TransferOptions;
  emit: TransferListener;
  zstd?: () => Promise<ZstdDecoder>;
  /** Where GETs land; see BufferPool. */
  pool: BufferPool;
}

/**
 * Fetches chunks [first, end), whose stored bytes lie back to back, with
 * one ranged GET, and hands each to `deliver` once its plaintext (decoded,
 * for a zstd chunk) hashes to its BLAKE3. Chunks are checked as their last
 * byte lands, on the thread pool for zstd ones, while the rest arrives.
 *
 * What a GET verified is handed over when the GET ends well, or when the
 * connection failed under it (cut, stalled, expired): the retry then asks
 * only for the rest. A GET in which the store lied (a chunk that fails its
 * hash, a range or length other than asked, a frame that is not one)
 * counts for nothing, and the retry (at most a few, see sendWithRetry)
 * asks for all of it again: a store that keeps lying fails the pull,
 * whatever it got right in between.
 *
 * Progress counts stored bytes, the ones on the wire, per chunk.
 */
export async function fetchChunks(
  ctx: FetchContext,
  first: number,
  end: number,
  signal: AbortSignal,
  deliver: (index: number, chunk: Verified) => void,
): Promise<void> {
  const delivered = new Set<number>();
  let from = first;
  await sendWithRetry(ctx.opts, first + 1, ctx.emit, signal, async () => {
    while (from < end && delivered.has(from)) from++;
    if (from === end) return;
    const base = ctx.chunks[from]!.storedOffset;
    const last = ctx.chunks[end - 1]!;
    const size = last.storedOffset + last.storedSize - base;
    const lease = ctx.pool.lease(size);
    const into = lease.buf;
    const counted = new Map<number, number>();
    const verified = new Map<number, Buffer>();
    const decoding: Array<Promise<void>> = [];
    let failure: { err: unknown } | null = null;
    let cur = from; // the chunk the next byte belongs to
    let complete = from; // the next chunk whose last byte has not landed

    const verify = (c: RemoteChunk, plain: Buffer) => {
      const hasher = new Blake3Hasher();
      hasher.update(plain);
      if (!hasher.digestBuffer().equals(Buffer.from(c.hash))) {
        throw new PartHttpError(`chunk ${c.index} (bytes ${c.offset}-${c.offset + c.size - 1}) does not match its BLAKE3 hash`, "untrusted");
      }
      verified.set(c.index, plain);
    };
    const landed = (c: RemoteChunk) => {
      const stored = into.subarray(c.storedOffset - base, c.storedOffset - base + c.storedSize);
      if (c.codec === Codec.NONE) return verify(c, stored);
      decoding.push(
        decodeChunk(c, stored, ctx.zstd)
          .then((plain) => verify(c, plain))
          .catch((err: unknown) => void (failure ??= { err })),
      );
    };
    const onBytes = (n: number, received: number) => {
      for (let pos = received - n; pos < received; ) {
        const c = ctx.chunks[cur]!;
        const chunkEnd = c.storedOffset + c.storedSize - base;
        const take = Math.min(received, chunkEnd) - pos;
        // A chunk a previous try delivered (decoded out of order) arrives again, and counts once.
        if (!delivered.has(c.index)) {
          if (!counted.has(c.index)) ctx.emit({ type: "part_start", partNumber: c.index + 1, size: c.size });
          counted.set(c.index, (counted.get(c.index) ?? 0) + take);
          ctx.emit({ type: "progress", partNumber: c.index + 1, bytes: take });
        }
        pos += take;
        if (pos === chunkEnd) cur++;
      }
      for (; complete < end && ctx.chunks[complete]!.storedOffset + ctx.chunks[complete]!.storedSize - base <= received; complete++) {
        if (!delivered.has(complete)) landed(ctx.chunks[complete]!);
      }
      if (failure) throw failure.err;
    };
    const handOver = () => {
      for (const [index, plain] of verified) {
        delivered.add(index);
        // A raw chunk's bytes are the GET's buffer: it goes back to the pool once every such chunk is written.
        deliver(index, ctx.chunks[index]!.codec === Codec.NONE ? { bytes: plain, release: lease.hold() } : { bytes: plain });
        ctx.emit({ type: "part_done", partNumber: index + 1, size: ctx.chunks[index]!.size, wireBytes: ctx.chunks[index]!.storedSize });
      }
    };

    try {
      try {
        await getStoredRange({ url: ctx.url(), headers: {}, offset: base, size, into, agents: ctx.agents, signal, onBytes });
      } catch (err) {
        if (err instanceof PartHttpError && err.kind === "expired") await ctx.refresh();
        throw err;
      }
      await Promise.all(decoding);
      if (failure) throw (failure as { err: unknown }).err;
      handOver();
    } catch (err) {
      await Promise.allSettled(decoding);
      // The connection failed, the bytes did not lie: keep what verified. Anything else: keep nothing.
      const broken = !failure && err instanceof PartHttpError && (err.kind === "retryable" || err.kind === "expired");
      if (broken) handOver();
      // Bytes of chunks not handed over are taken back, so a retry does not count them twice.
      for (const [index, bytes] of counted) if (!delivered.has(index)) ctx.emit({ type: "progress", partNumber: index + 1, bytes: -bytes });
      throw err;
    } finally {
      lease.drop(); // decoding is over either way: only the chunks handed on still hold the buffer
    }
  });
}

/**
 * Fetches one chunk too big to hold in memory (only versions stored before
 * content-defined chunking have them, up to a part's 5 GiB) straight into
 * `fd` at `position`, hashing it on the way; it counts once all of it
 * hashed right. getRange never writes outside the chunk's range.
 */
export async function streamChunk(ctx: FetchContext, index: number, fd: number, position: number, signal: AbortSignal): Promise<void> {
  const c = ctx.chunks[index]!;
  ctx.emit({ type: "part_start", partNumber: index + 1, size: c.size });
  await sendWithRetry(ctx.opts, index + 1, ctx.emit, signal, async (onBytes) => {
    try {
      await getRange({ url: ctx.url(), headers: {}, offset: c.storedOffset, size: c.size, hash: c.hash, fd, position, agents: ctx.agents, signal, onBytes });
    } catch (err) {
      if (err instanceof PartHttpError && err.kind === "expired") await ctx.refresh();
      throw err;
    }
  });
  ctx.emit({ type: "part_done", partNumber: index + 1, size: c.size, wireBytes: c.storedSize });
}
