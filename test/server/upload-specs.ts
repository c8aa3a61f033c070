import { Blake3Hasher } from "@napi-rs/blake-hash";
import type { UploadSpec } from "../../server/uploads/validate-upload.js";

const MiB = 1024 * 1024;
const blake3 = (data: Buffer | string) => new Blake3Hasher().update(data).digestBuffer();

/**
 * An upload of `size` bytes that exist nowhere: chunks of `chunkSize` (the
 * last one shorter) with made-up hashes. The server never sees bytes, so
 * this is all it checks; only a file of one chunk must hash as that chunk.
 */
export function fakeSpec(path: string, seed: string, size: number, chunkSize = 4 * MiB): UploadSpec {
  const chunks = [];
  for (let offset = 0, i = 0; offset < size; offset += chunkSize, i++) chunks.push({ size: Math.min(chunkSize, size - offset), hash: blake3(`${seed}-${i}`) });
  const contentHash = chunks.length === 1 ? chunks[0]!.hash : size === 0 ? blake3("") : blake3(seed);
  return { path, size, contentHash, chunkCount: chunks.length, chunks, partSize: 0, baseRevision: null };
}

/** An upload of real bytes, cut into `chunkSize` chunks: what a client would declare for `data`. */
export function specOf(path: string, data: Buffer, chunkSize = MiB): UploadSpec & { bodies: Buffer[] } {
  const bodies = [];
  for (let offset = 0; offset < data.length; offset += chunkSize) bodies.push(data.subarray(offset, offset + chunkSize));
  const chunks = bodies.map((b) => ({ size: b.length, hash: blake3(b) }));
  return { path, size: data.length, contentHash: blake3(data), chunkCount: chunks.length, chunks, partSize: 0, baseRevision: null, bodies };
}
