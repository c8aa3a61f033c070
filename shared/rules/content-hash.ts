import { Blake3Hasher } from "@napi-rs/blake-hash";

/** BLAKE3-256 output length. */
export const HASH_LENGTH = 32;

const DOMAIN = Buffer.from("drive.content.v1\0", "latin1");

export interface ChunkDigest {
  size: number;
  hash: Uint8Array;
}

/**
 * The content hash of a file, from its chunk list alone, as proto/drive/v1/
 * types.proto defines it. Either side can check it without the file's bytes.
 */
export function contentHash(chunks: readonly ChunkDigest[]): Buffer {
  const hasher = new Blake3Hasher();
  hasher.update(DOMAIN);
  const size = Buffer.alloc(8);
  for (const chunk of chunks) {
    size.writeBigUInt64LE(BigInt(chunk.size));
    hasher.update(size);
    hasher.update(Buffer.from(chunk.hash.buffer, chunk.hash.byteOffset, chunk.hash.byteLength));
  }
  return hasher.digestBuffer();
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}
