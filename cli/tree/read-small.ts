import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { ChunkHasher, type ScannedChunk } from "../transfer/chunk-hasher.js";

/** A small file read whole: its bytes, chunks and content hash, and the stat they belong to. */
export interface SmallFile {
  bytes: Buffer;
  chunks: ScannedChunk[];
  contentHash: Buffer;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  dev: bigint;
  mode: number;
  /** When the stat was taken, for the index's racy check (unchanged.ts). */
  recordedNs: bigint;
}

/**
 * Reads a small file (at most SMALL_FILE_MAX) into memory once, and cuts
 * and hashes it in this thread: the push's own chunker and hasher
 * (chunk-hasher.ts), with no worker to start, which would cost more than a
 * 4 KiB file takes. Null when the file changed while it was read (its
 * stat moved, or it ended early or grew): the caller skips it this time.
 */
export async function readSmall(path: string, maxSize: number): Promise<SmallFile | null> {
  // O_NOFOLLOW: a symlink swapped in since the walk is not followed; O_NONBLOCK: nor is a FIFO waited on.
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const recordedNs = BigInt(Date.now()) * 1_000_000n;
    const before = await fh.stat({ bigint: true });
    if (!before.isFile()) return null;
    const size = Number(before.size);
    if (size > maxSize) return null;
    const bytes = Buffer.allocUnsafe(size);
    let at = 0;
    while (at < size) {
      const { bytesRead } = await fh.read(bytes, at, size - at, at);
      if (bytesRead === 0) return null;
      at += bytesRead;
    }
    const after = await fh.stat({ bigint: true });
    if (after.size !== before.size || after.mtimeNs !== before.mtimeNs || after.ctimeNs !== before.ctimeNs) return null;
    const hasher = new ChunkHasher();
    const chunks = hasher.update(bytes);
    const { last, contentHash } = hasher.finish();
    if (last) chunks.push(last);
    return {
      bytes,
      chunks,
      contentHash: contentHash!,
      size,
      mtimeNs: before.mtimeNs,
      ctimeNs: before.ctimeNs,
      ino: before.ino,
      dev: before.dev,
      mode: Number(before.mode & 0o7777n),
      recordedNs,
    };
  } finally {
    await fh.close();
  }
}
