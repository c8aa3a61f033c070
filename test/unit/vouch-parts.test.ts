import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { vouchParts } from "../../cli/transfer/vouch-parts.js";

const blake3 = (b: Buffer) => {
  const h = new Blake3Hasher();
  h.update(b);
  return h.digestBuffer();
};
const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");

describe("vouchParts", () => {
  const PART = 3 * 1024 * 1024 + 5; // spans several reads
  const data = randomBytes(3 * PART);
  const part = (i: number) => data.subarray(i * PART, (i + 1) * PART);
  let dir: string;
  let file: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "drive-vouch-"));
    file = join(dir, "f.bin");
    await writeFile(file, data);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const entry = (i: number, over: Partial<{ hash: Uint8Array; storedEtag: string }> = {}) => ({
    partNumber: i + 1,
    offset: i * PART,
    size: PART,
    hash: blake3(part(i)),
    storedEtag: md5(part(i)),
    ...over,
  });

  it("vouches for a part whose bytes match both the declared BLAKE3 and the store's MD5", async () => {
    expect(await vouchParts(file, [entry(0), entry(2)], new AbortController().signal)).toEqual(
      new Map([
        [1, md5(part(0))],
        [3, md5(part(2))],
      ]),
    );
  });

  it("refuses when the store holds other bytes, the file changed since the scan, or the ETag is no MD5", async () => {
    const refused = await vouchParts(
      file,
      [
        entry(0, { storedEtag: md5(randomBytes(10)) }), // the store holds other bytes
        entry(1, { hash: blake3(randomBytes(10)) }), // the file is not what the scan declared
        entry(2, { storedEtag: `${md5(part(2))}-1` }), // an ETag that is no plain MD5
      ],
      new AbortController().signal,
    );
    expect(refused).toEqual(new Map());
  });
});
