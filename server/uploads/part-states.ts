import type { StoredPart } from "../blob/blob-store.js";
import { reportedStoredSize, type PartRecord } from "./part-reports.js";
import type { PlanPart } from "./upload-plan.js";

export interface PartCheck {
  /** Parts the store holds as planned, with bytes vouched for. */
  confirmed: Set<number>;
  /** Client parts the store does not hold. */
  missing: number[];
  /** Client parts held at another size than reported, or with no report vouching for them. */
  unconfirmed: number[];
  /**
   * Unconfirmed client parts held at their plaintext size, with the store's
   * ETag: a client that finds the bytes match may vouch for them (see
   * PartStatus.stored_etag).
   */
  unvouched: Map<number, string>;
  /** Copy parts the store does not hold as the server's copy recorded: to copy (again). */
  toCopy: PlanPart[];
  /** Bytes each confirmed part stores, by part number. */
  storedSizes: Map<number, number>;
}

/**
 * Which parts of a plan can go into the object. Size alone is not enough:
 * a client whose file changed mid-push has already stored the new bytes
 * when its own hash check fails. So a part the client sends counts only
 * when the client reported the ETag the store lists, with a stored size
 * the listing agrees with; a part the server copies counts when the store
 * lists it at the copied range's length with the ETag the copy returned.
 */
export function checkParts(plan: readonly PlanPart[], listing: readonly StoredPart[], records: ReadonlyMap<number, PartRecord>): PartCheck {
  const byNumber = new Map(listing.map((p) => [p.partNumber, p]));
  const check: PartCheck = { confirmed: new Set(), missing: [], unconfirmed: [], unvouched: new Map(), toCopy: [], storedSizes: new Map() };
  for (const part of plan) {
    const n = part.partNumber;
    const held = byNumber.get(n);
    const record = records.get(n);
    if (part.copy) {
      const size = part.copy.end - part.copy.start;
      if (held && record?.byServer && held.etag === record.etag && held.size === size) {
        check.confirmed.add(n);
        check.storedSizes.set(n, size);
      } else check.toCopy.push(part);
      continue;
    }
    if (!held) {
      check.missing.push(n);
      continue;
    }
    const reported = record && !record.byServer && record.etag === held.etag ? record : undefined;
    if (reported && held.size === reportedStoredSize(part.size, reported)) {
      check.confirmed.add(n);
      check.storedSizes.set(n, held.size);
      continue;
    }
    check.unconfirmed.push(n);
    if (held.size === part.size && !reported) check.unvouched.set(n, held.etag);
  }
  return check;
}

/** The object's size once every part is in, or null while a client part's report is missing. */
export function expectedStoredSize(plan: readonly PlanPart[], records: ReadonlyMap<number, PartRecord>): number | null {
  let total = 0;
  for (const part of plan) {
    if (part.copy) {
      total += part.copy.end - part.copy.start;
      continue;
    }
    const record = records.get(part.partNumber);
    if (!record || record.byServer) return null;
    total += reportedStoredSize(part.size, record);
  }
  return total;
}
