import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { vouchParts, type UnvouchedPart } from "../../cli/transfer/vouch-parts.js";

const blake3 = (b: Buffer) => {
  const h = new Blake3Hasher();
  h.update(b);
  return h.digestBuffer();
};
const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");
const never = new AbortController().signal;

describe("vouchParts", () => {
  // Parts of three chunks of uneven sizes, as content-defined chunks are; the first spans several reads.
  const CHUNKS = [1_500_000, 300_000, 2_200_007];
  const PART = CHUNKS.reduce((a, b) => a + b, 0);
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

  const chunksOf = (i: number) => {
    let offset = i * PART;
    return CHUNKS.map((size) => {
      const c = { offset, size, hash: blake3(data.subarray(offset, offset + size)) };
      offset += size;
      return c;
    });
  };
  const entry = (i: number, over: Partial<UnvouchedPart> = {}): UnvouchedPart => ({
    partNumber: i + 1,
    chunks: chunksOf(i),
    storedEtag: md5(part(i)),
    ...over,
  });

  it("vouches for a part whose chunks match their BLAKE3 and whose bytes match the store's MD5", async () => {
    expect(await vouchParts(file, [entry(0), entry(2)], never)).toEqual(
      new Map([
        [1, md5(part(0))],
        [3, md5(part(2))],
      ]),
    );
  });

  it("takes the local store's BLAKE3 ETag of the whole part too", async () => {
    const etag = blake3(part(1)).toString("hex");
    expect(await vouchParts(file, [entry(1, { storedEtag: etag })], never)).toEqual(new Map([[2, etag]]));
  });

  it("refuses when the store holds other bytes, a chunk is not what the scan declared, or the ETag is no digest", async () => {
    const wrongChunk = chunksOf(1);
    wrongChunk[1] = { ...wrongChunk[1]!, hash: blake3(randomBytes(10)) };
    const refused = await vouchParts(
      file,
      [
        entry(0, { storedEtag: md5(randomBytes(10)) }), // the store holds other bytes
        entry(1, { chunks: wrongChunk }), // the file is not what the scan declared
        entry(2, { storedEtag: `${md5(part(2))}-1` }), // an ETag that is no plain MD5
        entry(2, { partNumber: 9, storedEtag: blake3(randomBytes(3)).toString("hex") }), // another part's BLAKE3
      ],
      never,
    );
    expect(refused).toEqual(new Map());
  });

  it("refuses a part whose chunks run past the file's end", async () => {
    const past = chunksOf(2).map((c) => ({ ...c, offset: c.offset + 1000 }));
    expect(await vouchParts(file, [entry(2, { chunks: past })], never)).toEqual(new Map());
  });
});
