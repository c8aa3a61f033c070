import { describe, expect, it } from "vitest";
import type { PartRecord } from "../../server/uploads/part-reports.js";
import { checkParts, expectedStoredSize } from "../../server/uploads/part-states.js";
import { packStoredSizes } from "../../server/uploads/stored-sizes.js";
import type { PlanPart } from "../../server/uploads/upload-plan.js";

const MiB = 1024 * 1024;
const plan: PlanPart[] = [
  { partNumber: 1, firstChunk: 0, chunkCount: 2, size: 8 * MiB, copy: null },
  { partNumber: 2, firstChunk: 2, chunkCount: 3, size: 7 * MiB, copy: { blobId: 9, firstSeq: 4, start: 100, end: 100 + 6 * MiB } },
  { partNumber: 3, firstChunk: 5, chunkCount: 2, size: 3 * MiB, copy: null },
];
const none = (etag: string): PartRecord => ({ etag, codec: 1, storedSizes: null, byServer: false });

describe("checkParts", () => {
  it("confirms a client part only with a report whose ETag and stored size the listing agrees with", () => {
    const zstd: PartRecord = { etag: "c", codec: 2, storedSizes: packStoredSizes([MiB, MiB]), byServer: false };
    const listing = [
      { partNumber: 1, size: 8 * MiB, etag: "a" },
      { partNumber: 3, size: 2 * MiB, etag: "c" },
    ];
    const check = checkParts(plan, listing, new Map([[1, none("a")], [3, zstd]]));
    expect([...check.confirmed].sort()).toEqual([1, 3]);
    expect(check.storedSizes).toEqual(new Map([[1, 8 * MiB], [3, 2 * MiB]]));
    expect(check.missing).toEqual([]);
  });

  it("leaves unvouched a part held at its plaintext size, for the client to check against the store's ETag", () => {
    const listing = [
      { partNumber: 1, size: 8 * MiB, etag: "never-reported" },
      { partNumber: 3, size: 3 * MiB, etag: "other" },
    ];
    const check = checkParts(plan, listing, new Map([[3, none("reported")]]));
    expect(check.confirmed.size).toBe(0);
    expect(check.unconfirmed).toEqual([1, 3]);
    expect(check.unvouched).toEqual(new Map([[1, "never-reported"], [3, "other"]]));
  });

  it("refuses a report whose stored sizes the listing does not bear out, with nothing for the client to vouch for", () => {
    const lying: PartRecord = { etag: "c", codec: 2, storedSizes: packStoredSizes([MiB, MiB]), byServer: false };
    const check = checkParts(plan, [{ partNumber: 3, size: 3 * MiB - 1, etag: "c" }], new Map([[3, lying]]));
    expect(check.unconfirmed).toEqual([3]);
    expect(check.unvouched).toEqual(new Map());
    expect(check.missing).toEqual([1]);
  });

  it("confirms a copy part by the server's own record; anything else is to copy again, never the client's to send", () => {
    const listed = { partNumber: 2, size: 6 * MiB, etag: "copy" };
    const byServer: PartRecord = { etag: "copy", codec: 1, storedSizes: null, byServer: true };
    expect(checkParts(plan, [listed], new Map([[2, byServer]])).confirmed).toEqual(new Set([2]));
    for (const [label, listing, record] of [
      ["not listed", [], byServer],
      ["no record", [listed], undefined],
      ["a client's report", [listed], none("copy")],
      ["another ETag", [{ ...listed, etag: "x" }], byServer],
      ["another size", [{ ...listed, size: 5 * MiB }], byServer],
    ] as const) {
      const check = checkParts(plan, listing, new Map(record ? [[2, record]] : []));
      expect(check.toCopy.map((p) => p.partNumber), label).toEqual([2]);
      expect([...check.missing, ...check.unconfirmed], label).not.toContain(2);
    }
  });
});

describe("expectedStoredSize", () => {
  it("adds reported and copied stored sizes, and is unknown while a client part has no report", () => {
    const zstd: PartRecord = { etag: "c", codec: 2, storedSizes: packStoredSizes([1000, 2000]), byServer: false };
    expect(expectedStoredSize(plan, new Map([[1, none("a")], [3, zstd]]))).toBe(8 * MiB + 6 * MiB + 3000);
    expect(expectedStoredSize(plan, new Map([[1, none("a")]]))).toBeNull();
  });
});
