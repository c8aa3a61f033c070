import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { contentHash, type ChunkDigest } from "../../shared/rules/content-hash.js";
import { CliError } from "../errors.js";
import { partSizes } from "./plan-parts.js";

export interface ScannedFile {
  size: number;
  mtimeMs: number;
  chunks: ChunkDigest[];
  contentHash: Buffer;
}

const READ_SIZE = 4 * 1024 * 1024;

/**
 * Reads a file once, hashing each part-sized chunk with BLAKE3. Memory stays
 * at two read buffers whatever the file's size. A file that changes while it
 * is read is refused rather than hashed half old, half new.
 */
export async function scanFile(
  path: string,
  partSize: (size: number) => number,
  opts: { signal?: AbortSignal; onHashed?: (bytes: number) => void } = {},
): Promise<ScannedFile> {
  // O_NONBLOCK: a FIFO would otherwise block the open (and a thread) until a writer came.
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const before = await fh.stat();
    if (!before.isFile()) throw new CliError("usage", `${path} is not a regular file`);
    const sizes = partSizes(before.size, partSize(before.size));
    const hashes = await hashChunks(fh, sizes, opts);
    if (!hashes) throw changed(path);
    const chunks: ChunkDigest[] = sizes.map((size, i) => ({ size, hash: hashes[i]! }));
    const after = await fh.stat();
    if (after.size !== before.size || after.mtimeMs !== before.mtimeMs) throw changed(path);
    return { size: before.size, mtimeMs: before.mtimeMs, chunks, contentHash: contentHash(chunks) };
  } finally {
    await fh.close();
  }
}

/**
 * BLAKE3 of each consecutive chunk of an open file, of the given sizes from
 * offset 0; null when the file ends before the chunks do. Two buffers take
 * turns: the thread pool reads the next while this thread hashes the last.
 */
export async function hashChunks(
  fh: FileHandle,
  sizes: readonly number[],
  opts: { signal?: AbortSignal; onHashed?: (bytes: number) => void } = {},
): Promise<Buffer[] | null> {
  const buffers = [Buffer.allocUnsafe(READ_SIZE), Buffer.allocUnsafe(READ_SIZE)];
  const reads = planReads(sizes);
  const readAt = (i: number) => fh.read(buffers[i % 2]!, 0, reads[i]!.length, reads[i]!.position);
  const hashes: Buffer[] = [];
  let hasher = new Blake3Hasher();
  let next = reads.length ? readAt(0) : null;
  for (let i = 0; i < reads.length; i++) {
    const { bytesRead } = await next!;
    opts.signal?.throwIfAborted(); // only with no read in flight
    if (bytesRead !== reads[i]!.length) return null;
    next = i + 1 < reads.length ? readAt(i + 1) : null;
    hasher.update(buffers[i % 2]!.subarray(0, bytesRead));
    opts.onHashed?.(bytesRead);
    if (reads[i]!.endsChunk) {
      hashes.push(hasher.digestBuffer());
      hasher = new Blake3Hasher();
    }
  }
  return hashes;
}

/** The reads that cover each chunk in turn, none crossing a chunk's end. */
function planReads(sizes: readonly number[]): Array<{ position: number; length: number; endsChunk: boolean }> {
  const reads = [];
  let position = 0;
  for (const size of sizes) {
    for (let left = size; left > 0; ) {
      const length = Math.min(READ_SIZE, left);
      left -= length;
      reads.push({ position, length, endsChunk: left === 0 });
      position += length;
    }
  }
  return reads;
}

function changed(path: string): CliError {
  return new CliError("integrity", `${path} changed while it was being read; try again when it is quiet`);
}
