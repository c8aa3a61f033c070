import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import type { PartChunk } from "./part-chunks.js";

export interface UnvouchedPart {
  partNumber: number;
  /** The part's chunks in order, back to back in the file, with the hashes the upload declared. */
  chunks: readonly PartChunk[];
  /** The store's ETag for what it holds: the part's MD5 on S3, its BLAKE3 on the local store. */
  storedEtag: string;
}

const BLOCK = 1024 * 1024;

/**
 * Of the parts a store holds that no report vouched for (a push killed
 * between a part's PUT and its report), those whose stored bytes are this
 * file's plaintext, stored raw: read once, every chunk's BLAKE3 is the
 * declared one and the whole part's MD5 (S3) or BLAKE3 (local store) is
 * the store's ETag. Both come from the same read, so a file edited since
 * the scan cannot pass. A part stored compressed never matches (its ETag
 * digests the frames) and is sent again. Returns part number → ETag, to
 * report (codec NONE) instead of sending the parts again.
 */
export async function vouchParts(file: string, parts: readonly UnvouchedPart[], signal: AbortSignal): Promise<Map<number, string>> {
  const vouched = new Map<number, string>();
  // Other ETags (multipart-style, SSE-KMS, SSE-C, other stores) are not a digest we can compute.
  const checkable = parts.filter((p) => etagKind(p.storedEtag) !== null && p.chunks.length > 0);
  if (!checkable.length) return vouched;
  const fh = await open(file, "r");
  try {
    const buf = Buffer.allocUnsafe(BLOCK);
    for (const part of checkable) {
      signal.throwIfAborted();
      const md5 = etagKind(part.storedEtag) === "md5" ? createHash("md5") : null;
      const whole = md5 ? null : new Blake3Hasher();
      let ok = true;
      for (const chunk of part.chunks) {
        const blake3 = new Blake3Hasher();
        let read = 0;
        while (read < chunk.size) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(BLOCK, chunk.size - read), chunk.offset + read);
          if (bytesRead === 0) break;
          blake3.update(buf.subarray(0, bytesRead));
          md5?.update(buf.subarray(0, bytesRead));
          whole?.update(buf.subarray(0, bytesRead));
          read += bytesRead;
        }
        if (read !== chunk.size || !blake3.digestBuffer().equals(Buffer.from(chunk.hash))) {
          ok = false;
          break;
        }
      }
      const digest = md5 ? md5.digest("hex") : whole!.digestBuffer().toString("hex");
      if (ok && digest === part.storedEtag.toLowerCase()) vouched.set(part.partNumber, part.storedEtag);
    }
  } finally {
    await fh.close();
  }
  return vouched;
}

function etagKind(etag: string): "md5" | "blake3" | null {
  if (/^[0-9a-fA-F]{32}$/.test(etag)) return "md5";
  if (/^[0-9a-fA-F]{64}$/.test(etag)) return "blake3";
  return null;
}
