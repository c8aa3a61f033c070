import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import type { LocalStat } from "./types.js";

const READ_SIZE = 1024 * 1024;

export interface HashedFile {
  /** Lowercase hex BLAKE3-256 of the bytes read. */
  hash: string;
  /** The file's stat just before it was read. */
  stat: LocalStat;
  bytes: number;
  /** The file moved while it was read (its size, mtime or ctime, or how much it held): the hash is of no one version. */
  changed: boolean;
}

/**
 * BLAKE3 of a whole file, read a block at a time (memory stays at one
 * buffer whatever its size). Opened without following a symlink or
 * waiting on a FIFO swapped in since the walk: those fail, as not files.
 */
export async function hashFile(abs: string, signal: AbortSignal): Promise<HashedFile> {
  const fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const recordedNs = BigInt(Date.now()) * 1_000_000n;
    const before = await fh.stat({ bigint: true });
    if (!before.isFile()) throw new Error("not a regular file");
    const hasher = new Blake3Hasher();
    const buf = Buffer.allocUnsafe(Number(before.size < BigInt(READ_SIZE) ? before.size : BigInt(READ_SIZE)) || 1);
    let bytes = 0;
    for (;;) {
      signal.throwIfAborted();
      const { bytesRead } = await fh.read(buf, 0, buf.length, bytes);
      if (bytesRead === 0) break;
      hasher.update(buf.subarray(0, bytesRead));
      bytes += bytesRead;
    }
    const after = await fh.stat({ bigint: true });
    const changed = bytes !== Number(before.size) || after.size !== before.size || after.mtimeNs !== before.mtimeNs || after.ctimeNs !== before.ctimeNs;
    const stat: LocalStat = {
      dev: before.dev,
      ino: before.ino,
      size: Number(before.size),
      mtimeNs: before.mtimeNs,
      ctimeNs: before.ctimeNs,
      mode: Number(before.mode & 0o7777n),
      recordedNs,
    };
    return { hash: hasher.digestBuffer().toString("hex"), stat, bytes, changed };
  } finally {
    await fh.close();
  }
}
