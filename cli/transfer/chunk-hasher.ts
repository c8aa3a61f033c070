import { Blake3Hasher } from "@napi-rs/blake-hash";
import { FastCdc } from "./fastcdc.js";

/** One content-defined chunk: where it sits in the stream and the BLAKE3-256 of its bytes. */
export interface ScannedChunk {
  offset: number;
  size: number;
  hash: Buffer;
}

/**
 * Cuts a byte stream into FastCDC chunks and hashes each with BLAKE3, and,
 * unless told not to, the whole stream too (the content hash: plain BLAKE3,
 * what `b3sum` prints). Feed it slices of any size in order; it keeps no
 * bytes of its own, so a caller may reuse a slice's buffer once update()
 * returns. For a stream of unknown length (stdin) as well as a file.
 */
export class ChunkHasher {
  private readonly cdc = new FastCdc();
  private readonly digests = new ChunkDigests();
  private readonly whole: Blake3Hasher | null;
  private finished = false;

  constructor(opts: { contentHash?: boolean } = {}) {
    this.whole = opts.contentHash === false ? null : new Blake3Hasher();
  }

  /** Bytes seen so far. */
  get offset(): number {
    return this.cdc.offset;
  }

  /** The chunks that end within `data`, in order. */
  update(data: Uint8Array): ScannedChunk[] {
    if (this.finished) throw new Error("ChunkHasher.update after finish");
    const buf = asBuffer(data);
    this.whole?.update(buf);
    return this.digests.update(buf, this.cdc.update(data));
  }

  /**
   * Ends the stream: the last chunk (none for an empty stream) and the
   * content hash (null when built with contentHash: false).
   */
  finish(): { last: ScannedChunk | null; contentHash: Buffer | null } {
    if (this.finished) throw new Error("ChunkHasher.finish called twice");
    this.finished = true;
    return { last: this.digests.end(this.cdc.finish()), contentHash: this.whole?.digestBuffer() ?? null };
  }
}

/**
 * BLAKE3 of each chunk of a stream, when something else finds the cuts
 * (FastCdc here or in a worker): feed the stream in order with the cuts
 * (absolute offsets) that fall within each slice.
 */
export class ChunkDigests {
  private hasher = new Blake3Hasher();
  private start = 0;
  private pos = 0;

  update(buf: Buffer, cuts: readonly number[]): ScannedChunk[] {
    const done: ScannedChunk[] = [];
    let from = 0;
    for (const cut of cuts) {
      this.hasher.update(buf.subarray(from, cut - this.pos));
      done.push({ offset: this.start, size: cut - this.start, hash: this.hasher.digestBuffer() });
      this.hasher = new Blake3Hasher();
      this.start = cut;
      from = cut - this.pos;
    }
    if (from < buf.length) this.hasher.update(buf.subarray(from));
    this.pos += buf.length;
    return done;
  }

  /** The last chunk, ending at `at` (the final cut), or null when there is none. */
  end(at: number | null): ScannedChunk | null {
    if (at === null) return null;
    return { offset: this.start, size: at - this.start, hash: this.hasher.digestBuffer() };
  }
}

/** The napi hasher takes Buffers; a view over the same memory costs no copy. */
export function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
