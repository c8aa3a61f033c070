import { Blake3Hasher } from "@napi-rs/blake-hash";
import { describe, expect, it } from "vitest";
import { checkParts } from "../../server/uploads/confirmed-parts.js";

const hash = (s: string) => {
  const h = new Blake3Hasher();
  h.update(s);
  return h.digestBuffer();
};
const chunks = [
  { size: 10, hash: hash("one") },
  { size: 5, hash: hash("two") },
  { size: 3, hash: hash("three") },
];

describe("checkParts", () => {
  it("on a BLAKE3-ETag store, trusts the ETag and not the client", () => {
    const listing = [
      { partNumber: 1, size: 10, etag: hash("one").toString("hex") },
      { partNumber: 2, size: 5, etag: hash("edited").toString("hex") }, // right size, other bytes
    ];
    const check = checkParts(chunks, listing, new Map([[2, hash("edited").toString("hex")]]), { partCopy: true, etagIsBlake3: true });
    expect([...check.confirmed]).toEqual([1]);
    expect(check.unconfirmed).toEqual([2]);
    expect(check.missing).toEqual([3]);
    // Its ETag already proves part 2 holds other bytes: nothing for a client to vouch for.
    expect(check.unvouched).toEqual(new Map());
  });

  it("on an MD5-ETag store, trusts only parts the client reported with that ETag", () => {
    const listing = [
      { partNumber: 1, size: 10, etag: "aaa" },
      { partNumber: 2, size: 5, etag: "bbb" }, // never reported: maybe bytes of a changed file
      { partNumber: 3, size: 4, etag: "ccc" }, // reported, wrong size
    ];
    const check = checkParts(chunks, listing, new Map([[1, "aaa"], [3, "ccc"]]), { partCopy: true, etagIsBlake3: false });
    expect([...check.confirmed]).toEqual([1]);
    expect(check.unconfirmed).toEqual([2, 3]);
    expect(check.missing).toEqual([]);
    // Part 2 has the planned size, so a client may check its bytes against the ETag; part 3 cannot be right.
    expect(check.unvouched).toEqual(new Map([[2, "bbb"]]));
  });
});
