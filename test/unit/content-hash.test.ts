import { Blake3Hasher } from "@napi-rs/blake-hash";
import { describe, expect, it } from "vitest";
import { contentHash } from "../../shared/rules/content-hash.js";

const blake3 = (data: Buffer) => {
  const h = new Blake3Hasher();
  h.update(data);
  return h.digestBuffer();
};

describe("content hash", () => {
  it("is BLAKE3 over the domain tag and each chunk's le64 size and hash, as types.proto says", () => {
    const a = blake3(Buffer.from("a"));
    const b = blake3(Buffer.from("bc"));
    const size = (n: number) => {
      const buf = Buffer.alloc(8);
      buf.writeBigUInt64LE(BigInt(n));
      return buf;
    };
    const expected = blake3(Buffer.concat([Buffer.from("drive.content.v1\0", "latin1"), size(1), a, size(2), b]));
    expect(contentHash([{ size: 1, hash: a }, { size: 2, hash: b }]).equals(expected)).toBe(true);
  });

  it("of an empty file is the hash of the tag alone", () => {
    expect(contentHash([]).equals(blake3(Buffer.from("drive.content.v1\0", "latin1")))).toBe(true);
  });

  it("depends on chunk order and sizes", () => {
    const x = blake3(Buffer.from("x"));
    const y = blake3(Buffer.from("y"));
    const base = contentHash([{ size: 1, hash: x }, { size: 1, hash: y }]);
    expect(contentHash([{ size: 1, hash: y }, { size: 1, hash: x }]).equals(base)).toBe(false);
    expect(contentHash([{ size: 2, hash: x }, { size: 1, hash: y }]).equals(base)).toBe(false);
  });
});
