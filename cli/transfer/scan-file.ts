import { open } from "node:fs/promises";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { contentHash, type ChunkDigest } from "../../server/core/content-hash.js";
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
 * at one read buffer whatever the file's size. A file that changes while it
 * is read is refused rather than hashed half old, half new.
 */
export async function scanFile(
  path: string,
  partSize: (size: number) => number,
  opts: { signal?: AbortSignal; onHashed?: (bytes: number) => void } = {},
): Promise<ScannedFile> {
  const fh = await open(path, "r");
  try {
    const before = await fh.stat();
    if (!before.isFile()) throw new CliError("usage", `${path} is not a regular file`);
    const sizes = partSizes(before.size, partSize(before.size));
    const buf = Buffer.allocUnsafe(READ_SIZE);
    const chunks: ChunkDigest[] = [];
    let position = 0;
    for (const size of sizes) {
      const hasher = new Blake3Hasher();
      let left = size;
      while (left > 0) {
        opts.signal?.throwIfAborted();
        const { bytesRead } = await fh.read(buf, 0, Math.min(READ_SIZE, left), position);
        if (bytesRead === 0) throw changed(path);
        hasher.update(buf.subarray(0, bytesRead));
        position += bytesRead;
        left -= bytesRead;
        opts.onHashed?.(bytesRead);
      }
      chunks.push({ size, hash: hasher.digestBuffer() });
    }
    const after = await fh.stat();
    if (after.size !== before.size || after.mtimeMs !== before.mtimeMs) throw changed(path);
    return { size: before.size, mtimeMs: before.mtimeMs, chunks, contentHash: contentHash(chunks) };
  } finally {
    await fh.close();
  }
}

function changed(path: string): CliError {
  return new CliError("integrity", `${path} changed while it was being read; try again when it is quiet`);
}
