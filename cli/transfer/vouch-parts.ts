import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { Blake3Hasher } from "@napi-rs/blake-hash";

export interface UnvouchedPart {
  partNumber: number;
  offset: number;
  size: number;
  /** BLAKE3 of the chunk, from the scan that the upload declared. */
  hash: Uint8Array;
  /** The store's ETag for what it holds: the part's MD5 on S3. */
  storedEtag: string;
}

const BLOCK = 1024 * 1024;

/**
 * Of the parts a store holds that no report vouched for (on S3, a push
 * killed between a part's PUT and its report), those whose stored bytes
 * are this file's bytes: read once, their BLAKE3 is the declared chunk hash
 * and their MD5 is the store's ETag. Both come from the same read, so a
 * file edited since the scan cannot pass. Returns part number → ETag, to
 * report instead of sending the parts again.
 */
export async function vouchParts(file: string, parts: readonly UnvouchedPart[], signal: AbortSignal): Promise<Map<number, string>> {
  const vouched = new Map<number, string>();
  // Other ETags (SSE-KMS, SSE-C, other stores) are not an MD5 we can compute.
  const checkable = parts.filter((p) => /^[0-9a-f]{32}$/.test(p.storedEtag));
  if (!checkable.length) return vouched;
  const fh = await open(file, "r");
  try {
    const buf = Buffer.allocUnsafe(BLOCK);
    for (const part of checkable) {
      signal.throwIfAborted();
      const blake3 = new Blake3Hasher();
      const md5 = createHash("md5");
      let read = 0;
      while (read < part.size) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(BLOCK, part.size - read), part.offset + read);
        if (bytesRead === 0) break;
        blake3.update(buf.subarray(0, bytesRead));
        md5.update(buf.subarray(0, bytesRead));
        read += bytesRead;
      }
      if (read === part.size && blake3.digestBuffer().equals(Buffer.from(part.hash)) && md5.digest("hex") === part.storedEtag) {
        vouched.set(part.partNumber, part.storedEtag);
      }
    }
  } finally {
    await fh.close();
  }
  return vouched;
}
