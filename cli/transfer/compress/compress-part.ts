import type { FileHandle } from "node:fs/promises";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { MiB, MIN_PART_SIZE } from "../../../shared/rules/part-rules.js";
import type { PartChunk } from "../part-chunks.js";
import { PartHttpError } from "../part-http.js";
import { compressFrame } from "./zstd.js";

/** A client part as it will be stored: one zstd frame per chunk, back to back. */
export interface CompressedPart {
  chunks: readonly PartChunk[];
  /** Each chunk's frame, kept in memory; null for one made again while the part is sent (past MAX_BUFFERED_PART). */
  frames: Array<Buffer | null>;
  /** Each frame's length, for ReportParts and the PUT's Content-Length. */
  storedSizes: number[];
  storedSize: number;
  plainSize: number;
}

/**
 * The most stored bytes of one compressed part kept in memory. A PUT needs
 * its Content-Length before its first byte, so a part is compressed whole
 * before it is sent; frames past this bound are dropped then and made
 * again from the file as the PUT goes (zstd gives the same frame for the
 * same bytes and level; each is checked). Each lane holds one part, so
 * memory stays under concurrency × (this + a few chunk buffers of at most
 * 4 MiB): 6 × ~76 MiB at most at the default concurrency, and ~6 × 24 MiB
 * in practice (the part size is picked so that an average part stores
 * ~24 MiB, compress-policy.ts). Recompressing costs ~3 % more compression
 * at that size: only parts over 64 MiB stored pay it, for their excess.
 */
export const MAX_BUFFERED_PART = 64 * MiB;

/** Chunks compressed at once per part: with six lanes, a dozen calls keep the libuv pool busy. */
const CHUNKS_IN_FLIGHT = 2;

/**
 * Reads a part's chunks from the file, checks each against its declared
 * BLAKE3 (a file edited since the scan must not be stored: "mismatch"),
 * and compresses each into its own frame. Returns null when storing the
 * part compressed is not allowed or not worth it, so it goes raw: stored
 * bytes not smaller than the plaintext, a part other than the last under
 * the 5 MiB minimum, or a part whose first quarter saves under 5 % (the
 * sample misjudged it; the rest is not tried).
 */
export async function compressPart(
  fh: FileHandle,
  file: string,
  chunks: readonly PartChunk[],
  opts: { last: boolean; signal: AbortSignal; maxBuffered?: number },
): Promise<CompressedPart | null> {
  const plainSize = chunks.reduce((s, c) => s + c.size, 0);
  const maxBuffered = opts.maxBuffered ?? MAX_BUFFERED_PART;
  const frames: Array<Buffer | null> = new Array(chunks.length).fill(null);
  const storedSizes: number[] = new Array(chunks.length).fill(0);
  let stored = 0;
  let kept = 0;
  let plainDone = 0;
  let next = 0;
  let giveUp = false;

  const lane = async () => {
    while (!giveUp && next < chunks.length) {
      const i = next++;
      const frame = await compressFrame(await readChunk(fh, file, chunks[i]!, opts.signal));
      opts.signal.throwIfAborted();
      storedSizes[i] = frame.length;
      if (kept + frame.length <= maxBuffered) {
        frames[i] = frame;
        kept += frame.length;
      }
      stored += frame.length;
      plainDone += chunks[i]!.size;
      if (stored >= plainSize || (plainDone >= plainSize / 4 && stored > plainDone * 0.95)) giveUp = true;
    }
  };
  await Promise.all(Array.from({ length: Math.min(CHUNKS_IN_FLIGHT, chunks.length) }, lane));
  if (giveUp) return null;
  if (stored >= plainSize || (!opts.last && stored < MIN_PART_SIZE)) return null;
  return { chunks, frames, storedSizes, storedSize: stored, plainSize };
}

/**
 * A compressed part's stored bytes in order, for its PUT: the frames kept
 * in memory as they are, the others compressed again from the file, one
 * ahead of the one being sent. A frame made again must be the chunk's
 * declared plaintext and come out the length it was reported with.
 */
export async function* storedBytes(fh: FileHandle, file: string, part: CompressedPart, signal: AbortSignal): AsyncGenerator<Buffer> {
  const remake = (i: number) => readChunk(fh, file, part.chunks[i]!, signal).then((plain) => compressFrame(plain));
  let ahead: Promise<Buffer> | null = null;
  for (let i = 0; i < part.frames.length; i++) {
    const kept = part.frames[i];
    if (kept) {
      yield kept;
      continue;
    }
    const frame = await (ahead ?? remake(i));
    ahead = null;
    if (i + 1 < part.frames.length && !part.frames[i + 1]) {
      ahead = remake(i + 1);
      // Handled now, awaited later: a PUT that fails first leaves it behind without an unhandled rejection.
      ahead.catch(() => undefined);
    }
    if (frame.length !== part.storedSizes[i]) {
      throw new Error(`zstd made a ${frame.length}-byte frame of chunk ${i} of a part, not the ${part.storedSizes[i]} bytes it made before`);
    }
    yield frame;
  }
}

/** One chunk's plaintext, read whole and checked against its declared hash. */
async function readChunk(fh: FileHandle, file: string, chunk: PartChunk, signal: AbortSignal): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(chunk.size);
  let got = 0;
  while (got < chunk.size) {
    const { bytesRead } = await fh.read(buf, got, chunk.size - got, chunk.offset + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  signal.throwIfAborted();
  const hasher = new Blake3Hasher();
  hasher.update(buf.subarray(0, got));
  if (got !== chunk.size || !hasher.digestBuffer().equals(Buffer.from(chunk.hash))) {
    throw new PartHttpError(`${file} changed while it was being uploaded`, "mismatch");
  }
  return buf;
}
