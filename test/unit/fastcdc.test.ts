import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChunkHasher } from "../../cli/transfer/chunk-hasher.js";
import { chunkSizes, FastCdc } from "../../cli/transfer/fastcdc.js";
import { scanFile } from "../../cli/transfer/scan-file.js";
import {
  AVG_CHUNK_SIZE,
  checkChunkSizes,
  GEAR,
  GEAR_LS,
  GEAR_WINDOW,
  MASK_L,
  MASK_S,
  MAX_CHUNK_SIZE,
  maxChunkCount,
  MIN_CHUNK_SIZE,
} from "../../shared/rules/chunking.js";

const MiB = 1024 * 1024;

/** Deterministic bytes (xorshift32), so the known vectors below never depend on a random source. */
function seeded(size: number, seed: number): Buffer {
  const out = Buffer.alloc(Math.ceil(size / 4) * 4);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  return out.subarray(0, size);
}

/** The cut rule of shared/rules/chunking.ts, written the slow and obvious way: the whole-stream hash, then the sequential pick. */
function referenceCuts(data: Uint8Array): number[] {
  const hashes = new Int32Array(data.length);
  let h = 0;
  for (let i = 0; i < data.length; i++) hashes[i] = h = ((h << 1) + GEAR[data[i]!]!) | 0;
  const cuts: number[] = [];
  let start = 0;
  for (let q = 0; q < data.length; q++) {
    const len = q - start + 1;
    if (len < MIN_CHUNK_SIZE) continue;
    const mask = len < AVG_CHUNK_SIZE ? MASK_S : MASK_L;
    if ((hashes[q]! & mask) === 0 || len === MAX_CHUNK_SIZE) {
      cuts.push(q + 1);
      start = q + 1;
    }
  }
  if (start < data.length) cuts.push(data.length);
  return cuts;
}

function cutsOf(data: Uint8Array, slices: readonly number[]): number[] {
  const cdc = new FastCdc();
  const cuts: number[] = [];
  let at = 0;
  for (let k = 0; at < data.length; k++) {
    const n = Math.min(slices[k % slices.length]!, data.length - at);
    cuts.push(...cdc.update(data.subarray(at, at + n)));
    at += n;
  }
  const end = cdc.finish();
  if (end !== null) cuts.push(end);
  return cuts;
}

const sizesOf = (cuts: number[]) => cuts.map((c, i) => c - (i ? cuts[i - 1]! : 0));

describe("FastCDC rules", () => {
  it("freezes the gear table: the high halves of SplitMix64 seeded with 'drivecdc'", () => {
    const M = (1n << 64n) - 1n;
    let s = 0x6472697665636463n;
    for (let i = 0; i < 256; i++) {
      s = (s + 0x9e3779b97f4a7c15n) & M;
      let z = s;
      z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
      z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
      z ^= z >> 31n;
      expect(GEAR[i]! >>> 0).toBe(Number(z >> 32n));
      expect(GEAR_LS[i]).toBe(GEAR[i]! << 1);
    }
  });

  it("uses NC level 2 masks: 22 and 18 bits under bit 31, the large mask's bits within the small's", () => {
    const bits = (m: number) => m.toString(2).replace(/0/g, "").length;
    expect(bits(MASK_S)).toBe(Math.log2(AVG_CHUNK_SIZE) + 2);
    expect(bits(MASK_L)).toBe(Math.log2(AVG_CHUNK_SIZE) - 2);
    expect(MASK_S & 0x80000000).toBe(0);
    expect(MASK_L & ~MASK_S).toBe(0);
    expect(GEAR_WINDOW).toBeLessThan(MIN_CHUNK_SIZE);
  });
});

describe("FastCdc", () => {
  const data = seeded(24 * MiB + 12345, 7);

  it("cuts where the rule says, the same whatever the slicing", () => {
    const expected = referenceCuts(data);
    expect(cutsOf(data, [data.length])).toEqual(expected);
    for (const slices of [[1], [3, 1, 4096], [MIN_CHUNK_SIZE - GEAR_WINDOW], [MIN_CHUNK_SIZE - 1, MIN_CHUNK_SIZE + 1], [AVG_CHUNK_SIZE - 1], [MAX_CHUNK_SIZE], [65537, 7]]) {
      // Byte-at-a-time over 24 MiB is slow; slices of 1 run over the first 2 MiB only.
      const part = slices[0] === 1 ? data.subarray(0, 2 * MiB) : data;
      expect(cutsOf(part, slices)).toEqual(slices[0] === 1 ? referenceCuts(part) : expected);
    }
  });

  it("matches the rule at unaligned offsets and on data that never passes a mask", () => {
    for (const shift of [1, 2, 3]) {
      const copy = Buffer.alloc(data.length + shift);
      data.copy(copy, shift);
      const view = copy.subarray(shift);
      expect(cutsOf(view, [1_000_003])).toEqual(referenceCuts(view));
    }
    const zeros = new Uint8Array(10 * MiB + 5);
    expect(cutsOf(zeros, [zeros.length])).toEqual(referenceCuts(zeros));
    const pattern = Buffer.alloc(9 * MiB, "abcdefgh");
    expect(cutsOf(pattern, [MiB])).toEqual(referenceCuts(pattern));
  });

  it("keeps every chunk within the size rules, with the average near 1 MiB", () => {
    for (const size of [1, MIN_CHUNK_SIZE - 1, MIN_CHUNK_SIZE, MIN_CHUNK_SIZE + 1, MAX_CHUNK_SIZE, MAX_CHUNK_SIZE + 1, data.length]) {
      const sizes = chunkSizes(data.subarray(0, size));
      expect(checkChunkSizes(sizes, true)).toBeNull();
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(size);
      expect(sizes.length).toBeLessThanOrEqual(maxChunkCount(size));
    }
    const sizes = chunkSizes(data);
    const mean = data.length / sizes.length;
    expect(mean).toBeGreaterThan(0.8 * MiB);
    expect(mean).toBeLessThan(1.5 * MiB);
    expect(chunkSizes(new Uint8Array(0))).toEqual([]);
    const empty = new FastCdc();
    expect(empty.finish()).toBeNull();
  });

  it("resynchronises after an insert: only the chunks around the edit change", () => {
    const at = 12 * MiB + 777;
    const edited = Buffer.concat([data.subarray(0, at), seeded(MiB, 99), data.subarray(at)]);
    const before = sizesOf(cutsOf(data, [data.length]));
    const after = sizesOf(cutsOf(edited, [edited.length]));
    const key = (sizes: number[], buf: Buffer) => {
      const out = new Set<string>();
      let off = 0;
      for (const s of sizes) {
        out.add(buf.subarray(off, off + s).toString("base64").slice(0, 40) + s);
        off += s;
      }
      return out;
    };
    const old = key(before, data);
    const changed = [...key(after, edited)].filter((k) => !old.has(k)).length;
    expect(changed).toBeGreaterThanOrEqual(1);
    expect(changed).toBeLessThanOrEqual(4); // the inserted MiB spans at most a few chunks
    expect(after.length - before.length).toBeLessThanOrEqual(3);
  });

  it("cuts a seeded buffer at the offsets it always has (a changed table or mask fails here)", () => {
    const cuts = cutsOf(seeded(16 * MiB, 20240601), [16 * MiB]);
    expect(cuts.slice(0, 8)).toEqual(KNOWN_CUTS);
    expect(cuts.length).toBe(KNOWN_COUNT);
  });
});

describe("ChunkHasher and scanFile", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "fastcdc-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("hashes each chunk and the whole stream with BLAKE3, whatever the slicing", () => {
    const data = seeded(6 * MiB + 3, 5);
    const h = new ChunkHasher();
    const chunks = [];
    for (let at = 0; at < data.length; at += 777_777) chunks.push(...h.update(data.subarray(at, at + 777_777)));
    const { last, contentHash } = h.finish();
    if (last) chunks.push(last);
    const blake3 = (b: Buffer) => new Blake3Hasher().update(b).digestBuffer();
    expect(chunks.map((c) => c.size)).toEqual(chunkSizes(data));
    for (const c of chunks) expect(c.hash.equals(blake3(data.subarray(c.offset, c.offset + c.size)))).toBe(true);
    expect(contentHash!.equals(blake3(data))).toBe(true);
  });

  it.skipIf(!existsSync("/usr/bin/b3sum"))("gives the content hash b3sum prints, for sizes on and around the edges", async () => {
    for (const size of [0, 1, MIN_CHUNK_SIZE, 4 * MiB + 1, 9 * MiB + 17]) {
      const path = join(dir, `f${size}`);
      await writeFile(path, seeded(size, size + 1));
      const scanned = await scanFile(path);
      const b3 = execFileSync("/usr/bin/b3sum", ["--no-names", path]).toString().trim();
      expect(scanned.contentHash.toString("hex")).toBe(b3);
      expect(scanned.size).toBe(size);
      expect(scanned.chunks.reduce((a, c) => a + c.size, 0)).toBe(size);
    }
  });
});

/** Cut offsets of seeded(16 MiB, 20240601), frozen when the gear table and masks were chosen. */
const KNOWN_CUTS = [899774, 1598089, 2667577, 3784901, 4198738, 5564446, 6646527, 7821127];
const KNOWN_COUNT = 17;
