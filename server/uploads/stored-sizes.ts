/**
 * A zstd part's frame sizes, one per chunk, as upload_parts.stored_sizes
 * keeps them: le32 each, 4 bytes a chunk. A frame never nears 4 GiB (a chunk
 * is at most 4 MiB; see MAX_FRAME_SIZE).
 */
export function packStoredSizes(sizes: readonly number[]): Buffer {
  const out = Buffer.alloc(sizes.length * 4);
  sizes.forEach((s, i) => out.writeUInt32LE(s, i * 4));
  return out;
}

export function unpackStoredSizes(packed: Buffer): number[] {
  const sizes: number[] = [];
  for (let off = 0; off + 4 <= packed.length; off += 4) sizes.push(packed.readUInt32LE(off));
  return sizes;
}

/** Sum of the packed sizes: a zstd part's stored bytes. */
export function sumStoredSizes(packed: Buffer): number {
  let sum = 0;
  for (let off = 0; off + 4 <= packed.length; off += 4) sum += packed.readUInt32LE(off);
  return sum;
}
