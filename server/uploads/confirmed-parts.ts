import type { BlobFeatures, StoredPart } from "../blob/blob-store.js";
import type { ChunkDigest } from "../../shared/rules/content-hash.js";
import { hex } from "../../shared/rules/content-hash.js";

export interface PartCheck {
  /** Parts the store holds with the planned size and bytes we can vouch for. */
  confirmed: Set<number>;
  /** Part numbers the store does not hold. */
  missing: number[];
  /** Held, but with the wrong size, or bytes nobody vouched for. */
  unconfirmed: number[];
  /**
   * The unconfirmed parts held with the planned size, by part number, with
   * the store's ETag: a client that finds its bytes match it may vouch for
   * them (see PartStatus.stored_etag). Empty for stores whose ETag is BLAKE3,
   * where such a part's bytes are known to be wrong.
   */
  unvouched: Map<number, string>;
}

/**
 * Which parts of an upload can go into the object. Size alone is not enough:
 * a client whose file changed mid-push has already stored the new bytes
 * when its own hash check fails. So a part counts only when its ETag proves
 * the bytes (a store whose ETags are BLAKE3), or when the client reported
 * that ETag after checking what it sent.
 */
export function checkParts(
  chunks: readonly ChunkDigest[],
  listing: readonly StoredPart[],
  reported: ReadonlyMap<number, string>,
  features: BlobFeatures,
): PartCheck {
  const byNumber = new Map(listing.map((p) => [p.partNumber, p]));
  const check: PartCheck = { confirmed: new Set(), missing: [], unconfirmed: [], unvouched: new Map() };
  chunks.forEach((chunk, i) => {
    const n = i + 1;
    const part = byNumber.get(n);
    if (!part) return void check.missing.push(n);
    const vouched = features.etagIsBlake3 ? part.etag === hex(chunk.hash) : reported.get(n) === part.etag;
    if (part.size === chunk.size && vouched) return void check.confirmed.add(n);
    check.unconfirmed.push(n);
    if (part.size === chunk.size && !features.etagIsBlake3) check.unvouched.set(n, part.etag);
  });
  return check;
}
