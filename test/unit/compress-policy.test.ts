import { describe, expect, it } from "vitest";
import { CompressPolicy, MAX_COMPRESSED_PART_SIZE } from "../../cli/transfer/compress/compress-policy.js";
import { Throughput } from "../../cli/transfer/compress/throughput.js";

const MiB = 1024 * 1024;

describe("Throughput", () => {
  it("is null before anything ran", () => {
    expect(new Throughput().rate()).toBeNull();
  });

  it("counts overlapping operations over the time any of them ran", () => {
    const t = new Throughput();
    // Six parts of 16 MiB that all ran in the same second: 96 MiB/s, not 16.
    for (let i = 0; i < 6; i++) t.add(16 * MiB, 0, 1000);
    expect(t.rate()).toBeCloseTo(96 * MiB);
  });

  it("leaves idle gaps out", () => {
    const t = new Throughput();
    t.add(10 * MiB, 0, 1000);
    t.add(10 * MiB, 5000, 6000);
    expect(t.rate()).toBeCloseTo(10 * MiB);
  });

  it("follows a change of rate: only the last few operations count", () => {
    const t = new Throughput(4);
    for (let i = 0; i < 10; i++) t.add(MiB, i * 1000, i * 1000 + 1000);
    for (let i = 10; i < 14; i++) t.add(8 * MiB, i * 1000, i * 1000 + 1000);
    expect(t.rate()).toBeCloseTo(8 * MiB);
  });
});

describe("CompressPolicy", () => {
  it("sends random-looking data raw, whatever the rates", () => {
    const p = new CompressPolicy();
    p.wire.add(MiB, 0, 1000); // a slow link: 1 MiB/s
    p.compressor.add(500 * MiB, 0, 1000);
    expect(p.decide(1.0)).toEqual({ compress: false, why: "saves-little" });
    expect(p.decide(0.95)).toEqual({ compress: false, why: "saves-little" });
    expect(p.decide(Number.NaN).compress).toBe(false);
  });

  it("compresses what halves, even on a link faster than the compressor", () => {
    const p = new CompressPolicy();
    p.wire.add(2000 * MiB, 0, 1000);
    p.compressor.add(300 * MiB, 0, 1000);
    expect(p.decide(0.12)).toEqual({ compress: true, why: "saves-half" });
    expect(p.decide(0.5)).toEqual({ compress: true, why: "saves-half" });
  });

  it("compresses the middle band only when it is faster", () => {
    const slow = new CompressPolicy();
    slow.wire.add(20 * MiB, 0, 1000);
    slow.compressor.add(300 * MiB, 0, 1000);
    expect(slow.decide(0.7)).toEqual({ compress: true, why: "faster" });

    const fast = new CompressPolicy();
    fast.wire.add(1000 * MiB, 0, 1000);
    fast.compressor.add(300 * MiB, 0, 1000);
    expect(fast.decide(0.7)).toEqual({ compress: false, why: "slower" });
  });

  it("sends the middle band raw until both rates are measured", () => {
    const p = new CompressPolicy();
    expect(p.decide(0.7)).toEqual({ compress: false, why: "no-rates" });
    p.wire.add(MiB, 0, 1000);
    expect(p.decide(0.7)).toEqual({ compress: false, why: "no-rates" });
  });

  it("times the compressor on samples that save enough, not on random data", () => {
    const p = new CompressPolicy();
    expect(p.worthTiming(0.7)).toBe(true);
    expect(p.worthTiming(0.99)).toBe(false);
  });

  it("obeys --compress never and always", () => {
    expect(new CompressPolicy("never").decide(0.01).compress).toBe(false);
    expect(new CompressPolicy("always").decide(0.99).compress).toBe(true);
    expect(new CompressPolicy("always").decide(1.01).compress).toBe(false);
  });

  it("asks for parts big enough that the smallest compressed one still stores 6 MiB", () => {
    const p = new CompressPolicy();
    expect(p.partSizeFor(1.0, 16 * MiB)).toBe(16 * MiB);
    expect(p.partSizeFor(0.95, 16 * MiB)).toBe(16 * MiB);
    expect(p.partSizeFor(0.5, 16 * MiB)).toBe(48 * MiB);
    expect(p.partSizeFor(0.12, 16 * MiB)).toBe(200 * MiB);
    expect(p.partSizeFor(0.001, 16 * MiB)).toBe(MAX_COMPRESSED_PART_SIZE);
    expect(p.partSizeFor(0.8, 16 * MiB) % MiB).toBe(0);
    expect(new CompressPolicy("never").partSizeFor(0.1, 16 * MiB)).toBe(16 * MiB);
  });
});
