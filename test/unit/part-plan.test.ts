import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_PART_SIZE, partSizeFor, partSizes } from "../../cli/transfer/plan-parts.js";
import { MAX_CHUNK_SIZE, MIN_CHUNK_SIZE } from "../../shared/rules/chunking.js";
import { planParts, type ChunkLocation, type PlanChunk, type PlannedPart } from "../../shared/rules/part-plan.js";
import {
  checkPartSizes,
  GiB,
  MAX_FILE_SIZE,
  MAX_PART_SIZE,
  MAX_PARTS,
  MiB,
  MIN_PART_SIZE,
  partSizeFor as sharedPartSizeFor,
} from "../../shared/rules/part-rules.js";

const GB = 1000 ** 3;

/** The plan's shape without materialising 10,000-element arrays for every size. */
function planOf(size: number, requested?: number) {
  const partSize = partSizeFor(size, requested);
  const count = Math.ceil(size / partSize);
  const last = size - (count - 1) * partSize;
  return { partSize, count, last };
}

describe("part size", () => {
  // Every size class from empty to 50 GB, with the edges around each part boundary.
  const sizes = new Set<number>([0, 1, 2, MIN_PART_SIZE - 1, MIN_PART_SIZE, MIN_PART_SIZE + 1]);
  for (const base of [DEFAULT_PART_SIZE, 100 * MiB, GiB, 10 * GiB, 83 * GiB, 50 * GB, 160 * GB]) {
    for (const d of [-1, 0, 1]) sizes.add(base + d);
  }
  for (let s = 1; s <= 50 * GB; s = Math.ceil(s * 1.37) + 7) sizes.add(s);
  sizes.add(50 * GB);
  sizes.add(DEFAULT_PART_SIZE * MAX_PARTS);
  sizes.add(DEFAULT_PART_SIZE * MAX_PARTS + 1);

  it.each([...sizes].sort((a, b) => a - b).map((s) => [s]))("obeys S3's rules for %i bytes", (size) => {
    const { partSize, count, last } = planOf(size);
    expect(count).toBeLessThanOrEqual(MAX_PARTS);
    expect(partSize).toBeLessThanOrEqual(MAX_PART_SIZE);
    expect(partSize).toBeGreaterThanOrEqual(MIN_PART_SIZE);
    if (size === 0) return expect(count).toBe(0);
    expect(last).toBeGreaterThan(0);
    expect(last).toBeLessThanOrEqual(partSize);
    expect((count - 1) * partSize + last).toBe(size);
  });

  it("keeps the default part size up to 10,000 parts, then grows in whole MiB", () => {
    expect(planOf(DEFAULT_PART_SIZE * MAX_PARTS).partSize).toBe(DEFAULT_PART_SIZE);
    const grown = planOf(DEFAULT_PART_SIZE * MAX_PARTS + 1).partSize;
    expect(grown).toBeGreaterThan(DEFAULT_PART_SIZE);
    expect(grown % MiB).toBe(0);
  });

  it("fits the biggest file the rules allow, and refuses a bigger one", () => {
    expect(planOf(MAX_FILE_SIZE)).toMatchObject({ partSize: MAX_PART_SIZE, count: MAX_PARTS });
    expect(() => partSizeFor(MAX_FILE_SIZE + 1)).toThrow(/most an upload can hold/);
  });

  it("refuses a requested part size outside 5 MiB .. 5 GiB: a usage error in the CLI, a plain Error in shared/", () => {
    expect(() => partSizeFor(1, MIN_PART_SIZE - 1)).toThrow(/between 5 MiB and 5 GiB/);
    expect(() => partSizeFor(1, MAX_PART_SIZE + 1)).toThrow(/between 5 MiB and 5 GiB/);
    expect(() => partSizeFor(1, MIN_PART_SIZE - 1)).toThrow(expect.objectContaining({ kind: "usage" }));
    expect(() => sharedPartSizeFor(1, MIN_PART_SIZE - 1)).toThrow(/between 5 MiB and 5 GiB/);
    expect(sharedPartSizeFor(50 * GB, DEFAULT_PART_SIZE)).toBe(DEFAULT_PART_SIZE);
  });

  it("cuts fixed-size part lists that the server's check accepts", () => {
    for (const size of [0, 1, MIN_PART_SIZE, 3 * MIN_PART_SIZE + 5, 300 * MiB]) {
      const parts = partSizes(size, partSizeFor(size, MIN_PART_SIZE));
      expect(checkPartSizes(parts, size)).toBeNull();
    }
  });

  it("lets the server refuse plans that break the rules", () => {
    expect(checkPartSizes([MIN_PART_SIZE - 1, 10], MIN_PART_SIZE + 9)).toMatch(/only the last may be under 5 MiB/);
    expect(checkPartSizes([MAX_PART_SIZE + 1], MAX_PART_SIZE + 1)).toMatch(/over the 5 GiB part maximum/);
    expect(checkPartSizes(new Array(MAX_PARTS + 1).fill(MIN_PART_SIZE), (MAX_PARTS + 1) * MIN_PART_SIZE)).toMatch(/10000-part maximum/);
    expect(checkPartSizes([MIN_PART_SIZE, 5], MIN_PART_SIZE + 6)).toMatch(/add up to/);
    expect(checkPartSizes([1], 0)).toMatch(/empty file has no chunks/);
    expect(checkPartSizes([], 1)).toMatch(/needs chunks/);
    expect(checkPartSizes([0], 0)).toMatch(/empty file/);
  });
});

// ---- planParts ----

/** A small deterministic PRNG (mulberry32) for sizes and hashes inside a scenario. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Chunks with unique hashes; the id is in the first 4 bytes, the rest from the PRNG. */
class Chunks {
  private next = 1;
  constructor(private readonly rand: () => number) {}
  make(size?: number): PlanChunk {
    const hash = new Uint8Array(32);
    new DataView(hash.buffer).setUint32(28, this.next++);
    for (let i = 0; i < 28; i++) hash[i] = Math.floor(this.rand() * 256);
    return { size: size ?? this.size(), hash };
  }
  /** Mostly around 1 MiB, sometimes at the edges of the rules. */
  size(): number {
    const r = this.rand();
    if (r < 0.1) return MIN_CHUNK_SIZE;
    if (r < 0.15) return MAX_CHUNK_SIZE;
    return MIN_CHUNK_SIZE + Math.floor(this.rand() * this.rand() * (MAX_CHUNK_SIZE - MIN_CHUNK_SIZE));
  }
}

const key = (hash: Uint8Array) => Buffer.from(hash).toString("hex");

/** The namespace's chunk index: each blob's chunk list, stored back to back with per-chunk stored sizes. */
class Index {
  private readonly byHash = new Map<string, ChunkLocation[]>();
  private nextBlob = 1;
  store(chunks: readonly PlanChunk[], ratio = 1): number {
    const blobId = this.nextBlob++;
    let offset = 0;
    chunks.forEach((c, seq) => {
      const storedSize = Math.max(1, Math.round(c.size * ratio));
      const k = key(c.hash);
      if (!this.byHash.has(k)) this.byHash.set(k, []);
      this.byHash.get(k)!.push({ blobId, seq, storedOffset: offset, storedSize });
      offset += storedSize;
    });
    return blobId;
  }
  locator(chunks: readonly PlanChunk[]): (i: number) => readonly ChunkLocation[] {
    return (i) => this.byHash.get(key(chunks[i]!.hash)) ?? [];
  }
}

/** Everything planParts promises (see shared/rules/part-plan.ts); throws on the first broken promise. */
function checkPlan(chunks: readonly PlanChunk[], locate: (i: number) => readonly ChunkLocation[], parts: readonly PlannedPart[]): void {
  let next = 0;
  expect(parts.length).toBeLessThanOrEqual(MAX_PARTS);
  parts.forEach((p, k) => {
    const last = k === parts.length - 1;
    expect(p.partNumber).toBe(k + 1);
    expect(p.firstChunk).toBe(next);
    expect(p.chunkCount).toBeGreaterThan(0);
    next += p.chunkCount;
    let plain = 0;
    for (let i = p.firstChunk; i < next; i++) plain += chunks[i]!.size;
    expect(p.size).toBe(plain);
    expect(plain).toBeLessThanOrEqual(MAX_PART_SIZE);
    if (p.copy) {
      let offset = p.copy.start;
      for (let i = p.firstChunk; i < next; i++) {
        const seq = p.copy.firstSeq + (i - p.firstChunk);
        const loc = locate(i).find((l) => l.blobId === p.copy!.blobId && l.seq === seq);
        expect(loc, `chunk ${i} at blob ${p.copy.blobId} seq ${seq}`).toBeDefined();
        expect(loc!.storedOffset).toBe(offset);
        offset += loc!.storedSize;
      }
      expect(p.copy.end).toBe(offset);
      const stored = p.copy.end - p.copy.start;
      expect(stored).toBeLessThanOrEqual(MAX_PART_SIZE);
      if (!last) expect(stored).toBeGreaterThanOrEqual(MIN_PART_SIZE);
    } else if (!last) {
      expect(plain).toBeGreaterThanOrEqual(MIN_PART_SIZE);
    }
  });
  expect(next).toBe(chunks.length);
}

const clientBytes = (parts: readonly PlannedPart[]) => parts.filter((p) => !p.copy).reduce((a, p) => a + p.size, 0);

/**
 * A namespace of a few blobs (some sharing chunks, some stored compressed)
 * and a new file made of fresh chunks and slices of those blobs.
 */
const scenario = fc.record({
  seed: fc.integer(),
  partSize: fc.oneof(fc.constant(MIN_PART_SIZE), fc.integer({ min: 5, max: 64 }).map((m) => m * MiB)),
  blobs: fc.array(fc.record({ count: fc.integer({ min: 1, max: 60 }), ratio: fc.constantFrom(1, 1, 0.3, 0.9, 1.02), shared: fc.double({ min: 0, max: 0.5, noNaN: true }) }), { maxLength: 4 }),
  segments: fc.array(
    fc.oneof(
      fc.record({ blob: fc.constant(-1), from: fc.constant(0), count: fc.integer({ min: 1, max: 25 }) }),
      fc.record({ blob: fc.nat(), from: fc.nat(), count: fc.integer({ min: 1, max: 40 }) }),
    ),
    { minLength: 1, maxLength: 14 },
  ),
  shortTail: fc.boolean(),
});

type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

function build(s: Scenario) {
  const rand = prng(s.seed);
  const make = new Chunks(rand);
  const index = new Index();
  const blobs: PlanChunk[][] = [];
  for (const b of s.blobs) {
    const list: PlanChunk[] = [];
    for (let i = 0; i < b.count; i++) {
      const earlier = blobs.flat();
      list.push(earlier.length && rand() < b.shared ? earlier[Math.floor(rand() * earlier.length)]! : make.make());
    }
    blobs.push(list);
    index.store(list, b.ratio);
  }
  const chunks: PlanChunk[] = [];
  for (const seg of s.segments) {
    if (seg.blob < 0 || blobs.length === 0) for (let i = 0; i < seg.count; i++) chunks.push(make.make());
    else {
      const blob = blobs[seg.blob % blobs.length]!;
      const from = seg.from % blob.length;
      chunks.push(...blob.slice(from, from + seg.count));
    }
  }
  if (s.shortTail) chunks.push(make.make(1 + Math.floor(rand() * MAX_CHUNK_SIZE)));
  return { chunks, locate: index.locator(chunks), partSize: s.partSize };
}

describe("planParts", () => {
  it("keeps every promise for any namespace and file", () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { chunks, locate, partSize } = build(s);
        checkPlan(chunks, locate, planParts(chunks, partSize, locate));
      }),
      { numRuns: 300 },
    );
  });

  it("is deterministic and plans nothing for an empty file", () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { chunks, locate, partSize } = build(s);
        expect(planParts(chunks, partSize, locate)).toEqual(planParts(chunks, partSize, locate));
      }),
      { numRuns: 30 },
    );
    expect(planParts([], DEFAULT_PART_SIZE, () => [])).toEqual([]);
  });

  it("refuses a part size out of range", () => {
    expect(() => planParts([], MIN_PART_SIZE - 1, () => [])).toThrow(/between 5 MiB and 5 GiB/);
    expect(() => planParts([], MAX_PART_SIZE + 1, () => [])).toThrow(/between 5 MiB and 5 GiB/);
  });

  it("copies a file the namespace already stores whole, in pieces of at most 5 GiB", () => {
    const make = new Chunks(prng(1));
    const chunks = Array.from({ length: 12 * 1024 }, () => make.make(MiB)); // 12 GiB
    const index = new Index();
    index.store(chunks);
    const locate = index.locator(chunks);
    const parts = planParts(chunks, DEFAULT_PART_SIZE, locate);
    checkPlan(chunks, locate, parts);
    expect(parts.every((p) => p.copy)).toBe(true);
    expect(parts.length).toBe(3);
    expect(clientBytes(parts)).toBe(0);
  });

  it("copies at the largest part size as at the smallest", () => {
    const make = new Chunks(prng(7));
    const old = Array.from({ length: 50 }, () => make.make(MiB));
    const index = new Index();
    index.store(old);
    const chunks = [...old.slice(0, 20), make.make(MiB), ...old.slice(20)];
    const locate = index.locator(chunks);
    for (const partSize of [MIN_PART_SIZE, MAX_PART_SIZE]) {
      const parts = planParts(chunks, partSize, locate);
      checkPlan(chunks, locate, parts);
      expect(clientBytes(parts)).toBe(5 * MiB);
    }
  });

  it("sends a run shorter than 5 MiB, and copies one at the file's end at any size", () => {
    const make = new Chunks(prng(2));
    const old = Array.from({ length: 40 }, () => make.make(MiB));
    const index = new Index();
    index.store(old);
    const fresh = () => Array.from({ length: 20 }, () => make.make(MiB));
    // fresh 20 MiB, 4 MiB of old, fresh 20 MiB, then 3 MiB of old to end the file.
    const chunks = [...fresh(), ...old.slice(0, 4), ...fresh(), ...old.slice(10, 13)];
    const locate = index.locator(chunks);
    const parts = planParts(chunks, DEFAULT_PART_SIZE, locate);
    checkPlan(chunks, locate, parts);
    expect(parts.filter((p) => p.copy)).toEqual([expect.objectContaining({ firstChunk: 44, chunkCount: 3, size: 3 * MiB })]);
  });

  it("pads a short stretch between copies from a neighbouring run, or sends the run when it cannot spare the bytes", () => {
    const make = new Chunks(prng(3));
    const old = Array.from({ length: 60 }, () => make.make(MiB));
    const index = new Index();
    index.store(old);
    // 30 MiB of old, 2 MiB new, 28 MiB of old: the 2 MiB takes 3 MiB off a run.
    let chunks = [...old.slice(0, 30), make.make(MiB), make.make(MiB), ...old.slice(30)];
    let locate = index.locator(chunks);
    let parts = planParts(chunks, DEFAULT_PART_SIZE, locate);
    checkPlan(chunks, locate, parts);
    expect(parts.map((p) => [!!p.copy, p.size])).toEqual([[true, 27 * MiB], [false, 5 * MiB], [true, 30 * MiB]]);
    // 6 MiB of old, 1 MiB new, 6 MiB of old, 1 MiB new, end: the runs cannot spare 4 MiB, so one is sent.
    chunks = [...old.slice(0, 6), make.make(MiB), ...old.slice(40, 46), make.make(MiB)];
    locate = index.locator(chunks);
    parts = planParts(chunks, DEFAULT_PART_SIZE, locate);
    checkPlan(chunks, locate, parts);
    expect(clientBytes(parts)).toBe(8 * MiB);
  });

  it("starts runs from at most four locations of a chunk, and takes the longest", () => {
    const make = new Chunks(prng(4));
    const file = Array.from({ length: 30 }, () => make.make(MiB));
    const index = new Index();
    for (let k = 0; k < 3; k++) index.store(file.slice(0, 6 + k)); // short copies first
    index.store(file); // the whole file, the fourth place of chunk 0
    const locate = index.locator(file);
    const parts = planParts(file, DEFAULT_PART_SIZE, locate);
    expect(parts).toEqual([expect.objectContaining({ copy: expect.objectContaining({ blobId: 4, firstSeq: 0 }) })]);
    // With a fifth place first found for chunk 0, the whole file is no run start there any more.
    const later = new Index();
    for (let k = 0; k < 4; k++) later.store(file.slice(0, 6));
    later.store(file);
    const plan = planParts(file, DEFAULT_PART_SIZE, later.locator(file));
    checkPlan(file, later.locator(file), plan);
    expect(plan[0]!.copy!.blobId).not.toBe(5);
  });

  it("fits 50 GB of 1 MiB chunks in 10,000 parts, new or alternating 5 MiB copies and new bytes", () => {
    const size = 50 * GB;
    const make = new Chunks(prng(5));
    const chunks = Array.from({ length: Math.ceil(size / MiB) }, () => make.make(MiB));
    const partSize = sharedPartSizeFor(size, DEFAULT_PART_SIZE);
    const none = planParts(chunks, partSize, () => []);
    checkPlan(chunks, () => [], none);
    // Every other 5 MiB stored: the worst case for copies, about 9,500 parts.
    const index = new Index();
    const stored = chunks.filter((_, i) => Math.floor(i / 5) % 2 === 0);
    index.store(stored);
    const locate = index.locator(chunks);
    const parts = planParts(chunks, partSize, locate);
    checkPlan(chunks, locate, parts);
    expect(parts.filter((p) => p.copy).length).toBeGreaterThan(4000);
  });

  it("merges the shortest copies into sent parts when there would be over 10,000 parts", () => {
    const size = 70 * GB;
    const make = new Chunks(prng(6));
    const chunks = Array.from({ length: Math.ceil(size / MiB) }, () => make.make(MiB));
    // Per 25 MiB: 5 MiB stored, 5 new, 10 stored, 5 new: about 10,700 parts before merging.
    const index = new Index();
    index.store(chunks.filter((_, i) => i % 25 < 5 || (i % 25 >= 10 && i % 25 < 20)));
    const locate = index.locator(chunks);
    const parts = planParts(chunks, sharedPartSizeFor(size, DEFAULT_PART_SIZE), locate);
    checkPlan(chunks, locate, parts);
    expect(parts.filter((p) => p.copy).length).toBeGreaterThan(2000); // the 10 MiB runs stay copies
  });

  /** Parts of the plan after an insert of about 1 MiB that the plan before it does not have, with no reuse at all. */
  function changedByInsert(seed: number, partSize: number) {
    const make = new Chunks(prng(seed));
    const old = Array.from({ length: 400 }, () => make.make());
    const at = 150 + (Math.abs(seed) % 100);
    // The insert changes the chunk it lands in and adds one.
    const edited = [...old.slice(0, at), make.make(), make.make(), ...old.slice(at + 1)];
    const sig = (chunks: PlanChunk[], p: PlannedPart) => chunks.slice(p.firstChunk, p.firstChunk + p.chunkCount).map((c) => key(c.hash)).join();
    const after = planParts(edited, partSize, () => []);
    checkPlan(edited, () => [], after);
    const known = new Set(planParts(old, partSize, () => []).map((p) => sig(old, p)));
    const insertAt = old.slice(0, at).reduce((a, c) => a + c.size, 0);
    const changed = after.filter((p) => !known.has(sig(edited, p)));
    const offsets = changed.map((p) => after.slice(0, p.partNumber - 1).reduce((a, q) => a + q.size, 0) - insertAt);
    return { changed: changed.length, offsets };
  }

  it("with no reuse, changes only the parts around an insert: boundaries resynchronise", () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 5, max: 64 }), (seed, partMiB) => {
        const { changed, offsets } = changedByInsert(seed, partMiB * MiB);
        expect(changed).toBeGreaterThanOrEqual(1);
        // Small parts can stay out of step for a while (11 in 48,000 tries at 5 MiB); large ones fall back at once.
        expect(changed).toBeLessThanOrEqual(partMiB < 16 ? 14 : 6);
        // Parts are at most 4 × the part size (18 MiB at least): the changed ones start near the insert.
        const reach = changed * Math.max(4 * partMiB * MiB, 18 * MiB);
        for (const off of offsets) expect(Math.abs(off)).toBeLessThanOrEqual(reach);
      }),
      { numRuns: 100 },
    );
    // On average, at the default part size, one or two parts.
    let total = 0;
    for (let seed = 0; seed < 100; seed++) total += changedByInsert(seed, DEFAULT_PART_SIZE).changed;
    expect(total / 100).toBeLessThan(1.6);
  });

  it("sends little more than the changed chunks when the old version is stored: insert, overwrite, append", () => {
    fc.assert(
      fc.property(fc.integer(), fc.constantFrom(1, 0.5), fc.constantFrom("insert", "overwrite", "append"), (seed, ratio, edit) => {
        const make = new Chunks(prng(seed));
        const old = Array.from({ length: 1000 }, () => make.make()); // about 1 GiB
        const index = new Index();
        index.store(old, ratio);
        const at = 300 + (Math.abs(seed) % 400);
        const changed = [make.make(), make.make()];
        const edited =
          edit === "insert" ? [...old.slice(0, at), ...changed, ...old.slice(at + 1)]
          : edit === "overwrite" ? [...old.slice(0, at), ...changed, ...old.slice(at + 2)]
          : [...old.slice(0, -1), ...changed];
        const locate = index.locator(edited);
        const parts = planParts(edited, DEFAULT_PART_SIZE, locate);
        checkPlan(edited, locate, parts);
        const changedBytes = changed.reduce((a, c) => a + c.size, 0);
        expect(clientBytes(parts)).toBeLessThanOrEqual(2 * MIN_PART_SIZE + changedBytes);
      }),
      { numRuns: 60 },
    );
  });
});
