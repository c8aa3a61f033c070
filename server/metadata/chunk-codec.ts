import type { ChunkDigest } from "../../shared/rules/content-hash.js";
import { HASH_LENGTH } from "../../shared/rules/content-hash.js";

const ENTRY = 8 + HASH_LENGTH;

/** Packs a chunk list as le64 size + 32-byte hash per chunk: 40 bytes a chunk, 400 KB at 10,000. */
export function packChunks(chunks: readonly ChunkDigest[]): Buffer {
  const out = Buffer.alloc(chunks.length * ENTRY);
  chunks.forEach((c, i) => {
    out.writeBigUInt64LE(BigInt(c.size), i * ENTRY);
    out.set(c.hash, i * ENTRY + 8);
  });
  return out;
}

export function unpackChunks(packed: Buffer): ChunkDigest[] {
  const chunks: ChunkDigest[] = [];
  for (let off = 0; off < packed.length; off += ENTRY) {
    chunks.push({
      size: Number(packed.readBigUInt64LE(off)),
      hash: packed.subarray(off + 8, off + ENTRY),
    });
  }
  return chunks;
}

export function countChunks(packed: Buffer): number {
  return packed.length / ENTRY;
}
