import { read } from "node:fs";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import type { RemoteChunk } from "./download-list.js";
import { unchanged, type LocalRef } from "./local-sources.js";

/**
 * Reads a chunk a scan found in a local file into `into`, or null when it
 * cannot be taken from there: the file changed since it was scanned (size,
 * mtime or inode differ, before or after the read), the read came up
 * short, or the bytes no longer hash to the chunk's BLAKE3. A null marks
 * the source changed, so its other chunks are fetched too, and the caller
 * fetches this one. Nothing read here counts unless it hashed right now.
 */
export async function readLocalChunk(ref: LocalRef, chunk: RemoteChunk, into: Buffer = Buffer.allocUnsafe(chunk.size)): Promise<Buffer | null> {
  const { source } = ref;
  if (source.changed) return null;
  const giveUp = () => {
    source.changed = true;
    return null;
  };
  if (!(await unchanged(source))) return giveUp();
  const bytes = await readExactly(source.fh.fd, into, ref.offset, chunk.size);
  if (!bytes || !(await unchanged(source)) || !hashes(bytes, chunk.hash)) return giveUp();
  return bytes;
}

/** An earlier chunk of the file being written, read back from it (already written and verified), checked again. */
export async function readOwnChunk(fd: number, position: number, chunk: RemoteChunk, into: Buffer): Promise<Buffer | null> {
  const bytes = await readExactly(fd, into, position, chunk.size);
  return bytes && hashes(bytes, chunk.hash) ? bytes : null;
}

/** `size` bytes of fd from `position` into the start of `into`; null when the file ends first or the read fails. */
async function readExactly(fd: number, into: Buffer, position: number, size: number): Promise<Buffer | null> {
  for (let got = 0; got < size; ) {
    const n = await new Promise<number>((resolve) => read(fd, into, got, size - got, position + got, (err, n) => resolve(err ? 0 : n)));
    if (n === 0) return null;
    got += n;
  }
  return into.subarray(0, size);
}

function hashes(bytes: Buffer, hash: Uint8Array): boolean {
  const hasher = new Blake3Hasher();
  hasher.update(bytes);
  return hasher.digestBuffer().equals(Buffer.from(hash));
}
