import { closeSync, constants, fstatSync, openSync, readSync, type BigIntStats } from "node:fs";
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
  const fh = await open(abs, FLAGS);
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
    return { hash: hasher.digestBuffer().toString("hex"), stat: localStat(before, recordedNs), bytes, changed: moved(before, after, bytes) };
  } finally {
    await fh.close();
  }
}

/** Up to this size a file is read in place, synchronously: five trips through the thread pool cost more than reading it. */
export const SMALL_HASH_MAX = 64 * 1024;
const small = Buffer.allocUnsafe(SMALL_HASH_MAX + 1);

/** hashFile for a small file (SMALL_HASH_MAX at most, as the walk saw it), without leaving this thread; one that grew is read by hashFile. */
export function hashSmallFile(abs: string): HashedFile | null {
  const fd = openSync(abs, FLAGS);
  try {
    const recordedNs = BigInt(Date.now()) * 1_000_000n;
    const before = fstatSync(fd, { bigint: true });
    if (!before.isFile()) throw new Error("not a regular file");
    if (before.size > BigInt(SMALL_HASH_MAX)) return null;
    let bytes = 0;
    for (let n; (n = readSync(fd, small, bytes, small.length - bytes, bytes)) > 0; ) bytes += n;
    if (bytes > SMALL_HASH_MAX) return null;
    const after = fstatSync(fd, { bigint: true });
    const hash = new Blake3Hasher().update(small.subarray(0, bytes)).digestBuffer().toString("hex");
    return { hash, stat: localStat(before, recordedNs), bytes, changed: moved(before, after, bytes) };
  } finally {
    closeSync(fd);
  }
}

const FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

function moved(before: BigIntStats, after: BigIntStats, bytes: number): boolean {
  return bytes !== Number(before.size) || after.size !== before.size || after.mtimeNs !== before.mtimeNs || after.ctimeNs !== before.ctimeNs;
}

function localStat(st: BigIntStats, recordedNs: bigint): LocalStat {
  return { dev: st.dev, ino: st.ino, size: Number(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, mode: Number(st.mode & 0o7777n), recordedNs };
}
