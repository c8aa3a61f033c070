import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { CliError } from "../errors.js";
import { ChunkDigests, ChunkHasher, type ScannedChunk } from "./chunk-hasher.js";
import { CutThread } from "./cut-thread.js";

export type { ScannedChunk } from "./chunk-hasher.js";

export interface ScannedFile {
  size: number;
  mtimeMs: number;
  ino: number;
  dev: number;
  chunks: ScannedChunk[];
  /** Plain BLAKE3-256 of the whole file, what `b3sum` prints. */
  contentHash: Buffer;
}

export interface ScanOptions {
  signal?: AbortSignal;
  /** Called as bytes are hashed, with how many since the last call. */
  onHashed?: (bytes: number) => void;
  /** Cut in a worker thread: "auto" (the default) for files of THREAD_MIN_SIZE and more, given two cores. */
  thread?: "auto" | "always" | "never";
}

const READ_SIZE = 4 * 1024 * 1024;
/** Below this, starting a worker (tens of ms; more from sources) costs more than it saves. */
export const THREAD_MIN_SIZE = 64 * 1024 * 1024;
/** Blocks on their way through the worker at once: enough to keep it busy while this thread hashes. */
const THREAD_DEPTH = 4;

/**
 * Reads a file once: FastCDC chunks, the BLAKE3 of each, and the BLAKE3 of
 * the whole file. Memory stays at a few read buffers whatever the size. A
 * file that changes while it is read (its size or mtime moves, or it ends
 * early) is refused rather than hashed half old, half new.
 */
export async function scanFile(path: string, opts: ScanOptions = {}): Promise<ScannedFile> {
  // O_NONBLOCK: a FIFO would otherwise block the open (and a thread) until a writer came.
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const before = await fh.stat();
    if (!before.isFile()) throw new CliError("usage", `${path} is not a regular file`);
    const scanned = await chunkFile(fh, before.size, opts);
    if (!scanned) throw changed(path);
    const after = await fh.stat();
    if (after.size !== before.size || after.mtimeMs !== before.mtimeMs) throw changed(path);
    return { size: before.size, mtimeMs: before.mtimeMs, ino: before.ino, dev: before.dev, ...scanned };
  } finally {
    await fh.close();
  }
}

/**
 * Chunks and hashes the first `size` bytes of an open file, as scanFile
 * does; null when the file ends before `size` bytes. It does not stat the
 * file: a caller that must know the bytes held still compares stats around
 * it (or checks each chunk's hash when it reads the bytes again).
 */
export async function chunkFile(
  fh: FileHandle,
  size: number,
  opts: ScanOptions = {},
): Promise<{ chunks: ScannedChunk[]; contentHash: Buffer } | null> {
  const thread = opts.thread ?? "auto";
  if (thread === "always" || (thread === "auto" && size >= THREAD_MIN_SIZE && availableParallelism() > 1)) {
    return chunkFileThreaded(fh, size, opts);
  }
  const hasher = new ChunkHasher();
  const chunks: ScannedChunk[] = [];
  const complete = await readInTurns(fh, size, opts, (data) => {
    for (const chunk of hasher.update(data)) chunks.push(chunk);
  });
  if (!complete) return null;
  const { last, contentHash } = hasher.finish();
  if (last) chunks.push(last);
  return { chunks, contentHash: contentHash! };
}

/**
 * chunkFile with the cuts found in a worker thread. This thread reads (the
 * thread pool copies the bytes into a shared ring) and hashes: the whole
 * file while the worker cuts the same block, then each chunk once the
 * worker answers with the block's cuts. THREAD_DEPTH + 2 blocks of
 * READ_SIZE, whatever the file's size.
 */
async function chunkFileThreaded(
  fh: FileHandle,
  size: number,
  opts: ScanOptions,
): Promise<{ chunks: ScannedChunk[]; contentHash: Buffer } | null> {
  const slots = THREAD_DEPTH + 2;
  const ring = new SharedArrayBuffer(slots * READ_SIZE);
  const cutter = new CutThread(ring);
  let reading: Promise<{ slot: number; length: number; bytesRead: number }> | null = null;
  try {
    const whole = new Blake3Hasher();
    const digests = new ChunkDigests();
    const chunks: ScannedChunk[] = [];
    const free = Array.from({ length: slots }, (_, i) => i);
    const view = (slot: number, length: number) => Buffer.from(ring, slot * READ_SIZE, length);
    const inWorker: Array<{ cuts: Promise<number[]>; slot: number; length: number }> = [];
    const readAt = async (position: number) => {
      const slot = free.pop()!;
      const length = Math.min(READ_SIZE, size - position);
      const { bytesRead } = await fh.read(view(slot, length), 0, length, position);
      return { slot, length, bytesRead };
    };
    let position = 0;
    reading = size > 0 ? readAt(0) : null;
    while (reading) {
      const { slot, length, bytesRead } = await reading;
      opts.signal?.throwIfAborted(); // only with no read in flight
      if (bytesRead !== length) return null;
      position += length;
      reading = position < size ? readAt(position) : null;
      inWorker.push({ cuts: cutter.cut(slot * READ_SIZE, length), slot, length });
      whole.update(view(slot, length)); // while the worker cuts the same bytes
      while (inWorker.length >= THREAD_DEPTH || (!reading && inWorker.length)) {
        const block = inWorker.shift()!;
        for (const chunk of digests.update(view(block.slot, block.length), await block.cuts)) chunks.push(chunk);
        free.push(block.slot);
        opts.onHashed?.(block.length);
      }
    }
    const last = digests.end(await cutter.finish());
    if (last) chunks.push(last);
    return { chunks, contentHash: whole.digestBuffer() };
  } finally {
    await reading?.catch(() => undefined); // the caller may close fh once this returns
    await cutter.close();
  }
}

/**
 * Reads [0, size) in order, handing each block to `consume` before its
 * buffer is reused. Two buffers take turns: the thread pool reads the next
 * while this thread works on the last. False when the file ends early.
 */
async function readInTurns(
  fh: FileHandle,
  size: number,
  opts: ScanOptions,
  consume: (data: Buffer) => void,
): Promise<boolean> {
  const buffers = [Buffer.allocUnsafe(Math.min(READ_SIZE, size)), Buffer.allocUnsafe(Math.min(READ_SIZE, size))];
  const readAt = (i: number, position: number) =>
    fh.read(buffers[i % 2]!, 0, Math.min(READ_SIZE, size - position), position);
  let next = size > 0 ? readAt(0, 0) : null;
  for (let i = 0, position = 0; position < size; i++) {
    const { bytesRead } = await next!;
    opts.signal?.throwIfAborted(); // only with no read in flight
    const want = Math.min(READ_SIZE, size - position);
    if (bytesRead !== want) return false;
    position += bytesRead;
    next = position < size ? readAt(i + 1, position) : null;
    consume(buffers[i % 2]!.subarray(0, bytesRead));
    opts.onHashed?.(bytesRead);
  }
  return true;
}

/**
 * BLAKE3 of each consecutive chunk of an open file, of the given sizes from
 * offset 0; null when the file ends before the chunks do. For checking
 * chunks whose sizes are already known (a leftover temporary file).
 */
export async function hashChunks(
  fh: FileHandle,
  sizes: readonly number[],
  opts: ScanOptions = {},
): Promise<Buffer[] | null> {
  const total = sizes.reduce((a, b) => a + b, 0);
  const hashes: Buffer[] = [];
  let chunk = 0;
  let left = sizes[0] ?? 0;
  let hasher = new Blake3Hasher();
  const complete = await readInTurns(fh, total, opts, (data) => {
    for (let from = 0; from < data.length; ) {
      const take = Math.min(left, data.length - from);
      hasher.update(data.subarray(from, from + take));
      from += take;
      left -= take;
      while (left === 0 && chunk < sizes.length) {
        hashes.push(hasher.digestBuffer());
        hasher = new Blake3Hasher();
        left = sizes[++chunk] ?? 0;
      }
    }
  });
  return complete ? hashes : null;
}

function changed(path: string): CliError {
  return new CliError("integrity", `${path} changed while it was being read; try again when it is quiet`);
}
