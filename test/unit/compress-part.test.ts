import { randomBytes } from "node:crypto";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compressPart, storedBytes } from "../../cli/transfer/compress/compress-part.js";
import type { PartChunk } from "../../cli/transfer/part-chunks.js";
import { sampleRanges, sampleRatio, SAMPLE_SIZE } from "../../cli/transfer/compress/sample.js";
import { decompressFrames } from "../../cli/transfer/compress/zstd.js";
import { PartHttpError } from "../../cli/transfer/part-http.js";
import { logText } from "../support/sample-data.js";

const MiB = 1024 * 1024;
const never = new AbortController().signal;

function blake3(b: Buffer): Buffer {
  const h = new Blake3Hasher();
  h.update(b);
  return h.digestBuffer();
}

/** 1 MiB chunks over the whole buffer, as a scan would declare them (sizes need not be content-defined here). */
function chunksOf(data: Buffer, at = 0, chunkSize = MiB): PartChunk[] {
  const chunks: PartChunk[] = [];
  for (let off = 0; off < data.length; off += chunkSize) {
    const piece = data.subarray(off, off + chunkSize);
    chunks.push({ offset: at + off, size: piece.length, hash: blake3(piece) });
  }
  return chunks;
}

describe("compressPart and sampleRatio", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "drive-compress-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function withFile<T>(name: string, data: Buffer, fn: (fh: Awaited<ReturnType<typeof open>>, path: string) => Promise<T>): Promise<T> {
    const path = join(dir, name);
    await writeFile(path, data);
    const fh = await open(path, "r");
    try {
      return await fn(fh, path);
    } finally {
      await fh.close();
    }
  }

  it("spreads samples over a range, first at its start and last at its end", () => {
    expect(sampleRanges(100, 16 * MiB, 3)).toEqual([
      { position: 100, length: SAMPLE_SIZE },
      { position: 100 + (16 * MiB - SAMPLE_SIZE) / 2, length: SAMPLE_SIZE },
      { position: 100 + 16 * MiB - SAMPLE_SIZE, length: SAMPLE_SIZE },
    ]);
    expect(sampleRanges(0, 1000, 3)).toEqual([{ position: 0, length: 1000 }]);
  });

  it("measures text as compressible and random data as not", async () => {
    const text = logText(8 * MiB);
    const random = randomBytes(8 * MiB);
    const t = await withFile("text.log", text, (fh) => sampleRatio(fh, 0, text.length, 3));
    const r = await withFile("random.bin", random, (fh) => sampleRatio(fh, 0, random.length, 3));
    expect(t).toBeLessThan(0.5);
    expect(r).toBeGreaterThanOrEqual(0.99);
  });

  it("stores each chunk as its own frame that decompresses to the chunk", async () => {
    const text = logText(12 * MiB + 12345);
    const chunks = chunksOf(text);
    const part = await withFile("part.log", text, (fh, path) => compressPart(fh, path, chunks, { last: true, signal: never }));
    expect(part).not.toBeNull();
    expect(part!.frames).toHaveLength(chunks.length);
    expect(part!.storedSizes).toEqual(part!.frames.map((f) => f!.length));
    expect(part!.storedSize).toBe(part!.storedSizes.reduce((a, b) => a + b, 0));
    expect(part!.plainSize).toBe(text.length);
    for (let i = 0; i < chunks.length; i++) {
      const plain = await decompressFrames(part!.frames[i]!);
      expect(plain.equals(text.subarray(chunks[i]!.offset, chunks[i]!.offset + chunks[i]!.size))).toBe(true);
    }
    // Frames back to back are a valid zstd stream of the whole part.
    expect((await decompressFrames(Buffer.concat(part!.frames as Buffer[]))).equals(text)).toBe(true);
  });

  it("reads a part from its chunks' offsets, not from 0", async () => {
    const text = logText(20 * MiB);
    const chunks = chunksOf(text.subarray(7 * MiB), 7 * MiB);
    const part = await withFile("mid.log", text, (fh, path) => compressPart(fh, path, chunks, { last: true, signal: never }));
    expect((await decompressFrames(Buffer.concat(part!.frames as Buffer[]))).equals(text.subarray(7 * MiB))).toBe(true);
  });

  it("gives up on data that does not shrink", async () => {
    const random = randomBytes(8 * MiB);
    const part = await withFile("r.bin", random, (fh, path) => compressPart(fh, path, chunksOf(random), { last: true, signal: never }));
    expect(part).toBeNull();
  });

  it("sends raw a part other than the last that would store under 5 MiB", async () => {
    const text = logText(8 * MiB); // compresses far below 5 MiB
    const chunks = chunksOf(text);
    const notLast = await withFile("small.log", text, (fh, path) => compressPart(fh, path, chunks, { last: false, signal: never }));
    expect(notLast).toBeNull();
    const last = await withFile("small2.log", text, (fh, path) => compressPart(fh, path, chunks, { last: true, signal: never }));
    expect(last).not.toBeNull();
  });

  it("keeps frames in memory up to its bound, and makes the rest again as the part is sent", async () => {
    const text = logText(8 * MiB);
    const chunks = chunksOf(text);
    const [whole, bounded, sent] = await withFile("big.log", text, async (fh, path) => {
      const whole = (await compressPart(fh, path, chunks, { last: true, signal: never }))!;
      const bounded = (await compressPart(fh, path, chunks, { last: true, signal: never, maxBuffered: 300_000 }))!;
      const sent: Buffer[] = [];
      for await (const b of storedBytes(fh, path, bounded, never)) sent.push(b);
      return [whole, bounded, Buffer.concat(sent)] as const;
    });
    expect(bounded.frames.filter(Boolean).reduce((n, f) => n + f!.length, 0)).toBeLessThanOrEqual(300_000);
    expect(bounded.frames.some((f) => f === null)).toBe(true);
    expect(bounded.storedSizes).toEqual(whole.storedSizes);
    expect(sent.equals(Buffer.concat(whole.frames as Buffer[]))).toBe(true);
    expect(sent.length).toBe(bounded.storedSize);
  });

  it("refuses a file edited between compressing a part and sending the frames it made again", async () => {
    const text = logText(8 * MiB);
    const chunks = chunksOf(text);
    const path = join(dir, "late-edit.log");
    await writeFile(path, text);
    const fh = await open(path, "r+");
    try {
      const part = (await compressPart(fh, path, chunks, { last: true, signal: never, maxBuffered: 1 }))!;
      await fh.write(Buffer.from("edited"), 0, 6, 5 * MiB);
      const err = await (async () => {
        for await (const _ of storedBytes(fh, path, part, never)) void _;
      })().catch((e) => e);
      expect(err).toBeInstanceOf(PartHttpError);
      expect(err.kind).toBe("mismatch");
    } finally {
      await fh.close();
    }
  });

  it("refuses a file edited since the scan", async () => {
    const text = logText(4 * MiB);
    const chunks = chunksOf(text);
    const edited = Buffer.from(text);
    edited[3 * MiB + 5] = edited[3 * MiB + 5]! ^ 1;
    const err = await withFile("edited.log", edited, (fh, path) => compressPart(fh, path, chunks, { last: true, signal: never })).catch((e) => e);
    expect(err).toBeInstanceOf(PartHttpError);
    expect(err.kind).toBe("mismatch");
  });

  it("refuses a file that shrank since the scan", async () => {
    const text = logText(4 * MiB);
    const chunks = chunksOf(text);
    const err = await withFile("short.log", text.subarray(0, 3 * MiB), (fh, path) => compressPart(fh, path, chunks, { last: true, signal: never })).catch((e) => e);
    expect(err.kind).toBe("mismatch");
  });
});
