import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, open, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Codec } from "../../gen/drive/v1/types_pb.js";
import type { RemoteChunk } from "../../cli/transfer/pull/download-list.js";
import { findLocalChunks, type ChunkScanner } from "../../cli/transfer/pull/find-local-chunks.js";
import { candidateSources, openSource, type LocalSource } from "../../cli/transfer/pull/local-sources.js";
import { readLocalChunk } from "../../cli/transfer/pull/read-local-chunk.js";

const KiB = 1024;
const never = new AbortController().signal;

function blake3(b: Buffer): Buffer {
  const h = new Blake3Hasher();
  h.update(b);
  return h.digestBuffer();
}

/** The chunk list of `data` cut every `size` bytes. */
function chunksOf(data: Buffer, size: number): RemoteChunk[] {
  const out: RemoteChunk[] = [];
  for (let at = 0; at < data.length; at += size) {
    const n = Math.min(size, data.length - at);
    out.push({ index: out.length, offset: at, size: n, hash: blake3(data.subarray(at, at + n)), storedOffset: at, storedSize: n, codec: Codec.NONE });
  }
  return out;
}

/** A stand-in for FastCDC: cuts where the bytes "CUT!" begin, so shifted content cuts alike. */
const markerScanner: ChunkScanner = async (fh, size) => {
  const buf = Buffer.alloc(size);
  await fh.read(buf, 0, size, 0);
  const cuts = [0];
  for (let at = buf.indexOf("CUT!", 1); at > 0; at = buf.indexOf("CUT!", at + 1)) cuts.push(at);
  cuts.push(size);
  return cuts.slice(0, -1).map((offset, i) => ({ offset, size: cuts[i + 1]! - offset, hash: blake3(buf.subarray(offset, cuts[i + 1]!)) }));
};

function marked(pieces: Buffer[]): Buffer {
  return Buffer.concat(pieces.map((p) => Buffer.concat([Buffer.from("CUT!"), p])));
}

describe("candidateSources", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "drive-sources-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("takes the destination first, then regular neighbours closest in size, within the budget", async () => {
    const d = join(dir, "a");
    await mkdir(d);
    await writeFile(join(d, "dest.bin"), Buffer.alloc(100 * KiB));
    for (const [name, size] of [["near.bin", 101], ["far.bin", 300], ["tiny.bin", 1], ["mid.bin", 120], ["huge.bin", 1000]] as const) {
      await writeFile(join(d, name), Buffer.alloc(size * KiB));
    }
    await writeFile(join(d, ".dest.bin.0123456789abcdef.drive-partial"), Buffer.alloc(100 * KiB));
    await symlink(join(d, "near.bin"), join(d, "link.bin"));
    execFileSync("mkfifo", [join(d, "fifo")]);
    await mkdir(join(d, "sub"));
    const picked = await candidateSources(join(d, "dest.bin"), 100 * KiB, 2 * KiB);
    expect(picked.map((p) => p.slice(d.length + 1))).toEqual(["dest.bin", "near.bin", "mid.bin"]); // far would pass 4 × 100 KiB
    const two = await candidateSources(join(d, "dest.bin"), 100 * KiB, 2 * KiB, { maxFiles: 1, budgetFactor: 10 });
    expect(two.map((p) => p.slice(d.length + 1))).toEqual(["dest.bin", "near.bin"]);
  });

  it("skips a destination that is a symlink, and works in a folder with nothing in it", async () => {
    const d = join(dir, "b");
    await mkdir(d);
    await writeFile(join(d, "real.bin"), Buffer.alloc(10 * KiB));
    await symlink(join(d, "real.bin"), join(d, "dest.bin"));
    expect((await candidateSources(join(d, "dest.bin"), 10 * KiB, 1)).map((p) => p.slice(d.length + 1))).toEqual(["real.bin"]);
    await mkdir(join(d, "empty"));
    expect(await candidateSources(join(d, "empty", "x"), 10, 1)).toEqual([]);
  });
});

describe("findLocalChunks and readLocalChunk", () => {
  let dir: string;
  const sources: LocalSource[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "drive-find-"));
  });
  afterAll(async () => {
    for (const s of sources) await s.fh.close();
    await rm(dir, { recursive: true, force: true });
  });
  const source = async (name: string, bytes: Buffer) => {
    await writeFile(join(dir, name), bytes);
    const s = (await openSource(join(dir, name)))!;
    sources.push(s);
    return s;
  };

  it("finds chunks of another file at other offsets, and of a leftover at their own", async () => {
    const p = Array.from({ length: 6 }, () => randomBytes(3 * KiB));
    const wanted = marked(p);
    // The remote list, cut the same way the scanner cuts.
    const remote = await source("remote.bin", wanted);
    const cut = await markerScanner(remote.fh, wanted.length, { signal: never });
    const chunks: RemoteChunk[] = cut.map((c, index) => ({ index, ...c, storedOffset: c.offset, storedSize: c.size, codec: Codec.NONE }));
    // An old version: piece 1 gone, an insert before piece 4.
    const old = await source("old.bin", marked([p[0]!, p[2]!, p[3]!, randomBytes(500), p[4]!]));
    // A leftover holding the first two chunks of this very content, then garbage.
    const leftover = await source("left.bin", Buffer.concat([wanted.subarray(0, chunks[2]!.offset), randomBytes(100)]));
    const found = await findLocalChunks(chunks, { aligned: [leftover], cut: [old] }, markerScanner, { signal: never });
    expect([...found.keys()].sort()).toEqual([0, 1, 2, 3, 4]);
    expect(found.get(0)!.source).toBe(leftover);
    expect(found.get(1)!.source).toBe(leftover);
    expect(found.get(3)!.source).toBe(old);
    for (const [i, ref] of found) expect((await readLocalChunk(ref, chunks[i]!))!.equals(wanted.subarray(chunks[i]!.offset, chunks[i]!.offset + chunks[i]!.size))).toBe(true);
  });

  it("probes an old version in place first, and cuts by content only from where the bytes first differ", async () => {
    const p = Array.from({ length: 8 }, () => randomBytes(2 * KiB));
    const wanted = marked([p[0]!, p[1]!, p[2]!, randomBytes(700), p[3]!, p[4]!, p[5]!, p[6]!, p[7]!]);
    const remote = await source("remote2.bin", wanted);
    const chunks: RemoteChunk[] = (await markerScanner(remote.fh, wanted.length, { signal: never })).map((c, index) => ({ index, ...c, storedOffset: c.offset, storedSize: c.size, codec: Codec.NONE }));
    const old = await source("old2.bin", marked(p)); // the old version: the same, without the insert
    const cuts: Array<[number, number]> = [];
    const spy: ChunkScanner = async (fh, size, o) => {
      const first = await markerScanner(fh, size, o);
      cuts.push([size, first[0]?.size ?? 0]);
      return first;
    };
    const found = await findLocalChunks(chunks, { aligned: [], cut: [old] }, spy, { signal: never });
    expect([...found.keys()].sort((a, b) => a - b)).toEqual([0, 1, 2, 4, 5, 6, 7, 8]);
    // The first three chunks matched in place; the cut started at the end of the third, where the old bytes are p[3].
    const prefix = chunks[3]!.offset;
    expect(cuts).toEqual([[old.size - prefix, 4 + 2 * KiB]]);
    for (const [i, ref] of found) expect((await readLocalChunk(ref, chunks[i]!))!.equals(wanted.subarray(chunks[i]!.offset, chunks[i]!.offset + chunks[i]!.size))).toBe(true);
    // An unchanged copy is found whole by the probe, and nothing is cut at all.
    cuts.length = 0;
    const same = await source("same2.bin", wanted);
    expect((await findLocalChunks(chunks, { aligned: [], cut: [same] }, spy, { signal: never })).size).toBe(chunks.length);
    expect(cuts).toEqual([]);
  });

  it("without a scanner, finds only what a leftover holds in place", async () => {
    const data = randomBytes(40 * KiB);
    const chunks = chunksOf(data, 8 * KiB);
    const leftover = await source("left2.bin", Buffer.concat([data.subarray(0, 20 * KiB), Buffer.alloc(20 * KiB)]));
    const found = await findLocalChunks(chunks, { aligned: [leftover], cut: [] }, null, { signal: never });
    expect([...found.keys()]).toEqual([0, 1]);
  });

  it("takes nothing from a file changed since its scan, even bytes that would still verify", async () => {
    const data = randomBytes(32 * KiB);
    const chunks = chunksOf(data, 8 * KiB);
    const s = await source("changing.bin", data);
    const found = await findLocalChunks(chunks, { aligned: [s], cut: [] }, null, { signal: never });
    expect(found.size).toBe(4);
    expect(await readLocalChunk(found.get(0)!, chunks[0]!)).not.toBeNull();
    // Another writer: chunk 1 overwritten, mtime moved.
    const fh = await open(join(dir, "changing.bin"), "r+");
    await fh.write(randomBytes(100), 0, 100, 9 * KiB);
    await fh.close();
    await utimes(join(dir, "changing.bin"), new Date(), new Date(Date.now() + 5000));
    expect(await readLocalChunk(found.get(1)!, chunks[1]!)).toBeNull();
    expect(s.changed).toBe(true);
    expect(await readLocalChunk(found.get(2)!, chunks[2]!)).toBeNull();
  });

  it("catches bytes changed with the mtime put back, by their hash", async () => {
    const data = randomBytes(16 * KiB);
    const chunks = chunksOf(data, 8 * KiB);
    const s = await source("sneaky.bin", data);
    const found = await findLocalChunks(chunks, { aligned: [s], cut: [] }, null, { signal: never });
    const fh = await open(join(dir, "sneaky.bin"), "r+");
    await fh.write(randomBytes(10), 0, 10, 10);
    await fh.close();
    await utimes(join(dir, "sneaky.bin"), new Date(s.mtimeMs), new Date(s.mtimeMs));
    expect(await readLocalChunk(found.get(0)!, chunks[0]!)).toBeNull();
  });
});
