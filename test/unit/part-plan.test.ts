import { describe, expect, it } from "vitest";
import { checkPartSizes, GiB, MAX_FILE_SIZE, MAX_PART_SIZE, MAX_PARTS, MiB, MIN_PART_SIZE } from "../../shared/rules/part-rules.js";
import { DEFAULT_PART_SIZE, partSizeFor, partSizes } from "../../cli/transfer/plan-parts.js";

const GB = 1000 ** 3;

/** The plan's shape without materialising 10,000-element arrays for every size. */
function planOf(size: number, requested?: number) {
  const partSize = partSizeFor(size, requested);
  const count = Math.ceil(size / partSize);
  const last = size - (count - 1) * partSize;
  return { partSize, count, last };
}

describe("part plan", () => {
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

  it("refuses a requested part size outside 5 MiB .. 5 GiB", () => {
    expect(() => partSizeFor(1, MIN_PART_SIZE - 1)).toThrow(/between 5 MiB and 5 GiB/);
    expect(() => partSizeFor(1, MAX_PART_SIZE + 1)).toThrow(/between 5 MiB and 5 GiB/);
  });

  it("cuts real part lists that the server's check accepts", () => {
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
