import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { describe, expect, it } from "vitest";
import { Codec } from "../../gen/drive/v1/types_pb.js";
import { PartHttpError } from "../../cli/transfer/part-http.js";
import { decodeChunk, type ZstdDecoder } from "../../cli/transfer/pull/decode-chunk.js";
import type { RemoteChunk } from "../../cli/transfer/pull/download-list.js";
import { BLOCK_MAX, checkZstdFrame } from "../../cli/transfer/pull/zstd-frame.js";

const KiB = 1024;

/** A frame built by hand: header, then blocks [type, size, payload], the last one marked. */
function frame(opts: { fcs?: number; single?: boolean; checksum?: boolean; window?: number }, blocks: Array<[0 | 1 | 2 | 3, number, Buffer]>): Buffer {
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd])];
  const fcsFlag = opts.fcs === undefined ? 0 : opts.fcs < 256 && opts.single ? 0 : opts.fcs < 65536 + 256 ? 1 : 2;
  parts.push(Buffer.from([(fcsFlag << 6) | ((opts.single ? 1 : 0) << 5) | ((opts.checksum ? 1 : 0) << 2)]));
  if (!opts.single) parts.push(Buffer.from([opts.window ?? 0x58])); // 0x58: 8 MiB
  if (opts.fcs !== undefined) {
    if (fcsFlag === 0) parts.push(Buffer.from([opts.fcs]));
    else if (fcsFlag === 1) parts.push(Buffer.from([(opts.fcs - 256) & 0xff, (opts.fcs - 256) >> 8]));
    else {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(opts.fcs);
      parts.push(b);
    }
  }
  blocks.forEach(([type, size, payload], i) => {
    const h = ((size << 3) | (type << 1) | (i === blocks.length - 1 ? 1 : 0)) >>> 0;
    parts.push(Buffer.from([h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff]), payload);
  });
  if (opts.checksum) parts.push(Buffer.alloc(4));
  return Buffer.concat(parts);
}

const raw = (b: Buffer): [0, number, Buffer] => [0, b.length, b];
const rle = (n: number): [1, number, Buffer] => [1, n, Buffer.from([0x61])];

describe("checkZstdFrame", () => {
  it("takes frames of raw and RLE blocks that decode to the chunk's size", () => {
    const data = randomBytes(300 * KiB);
    const blocks = [raw(data.subarray(0, BLOCK_MAX)), raw(data.subarray(BLOCK_MAX, 2 * BLOCK_MAX)), raw(data.subarray(2 * BLOCK_MAX))];
    expect(checkZstdFrame(frame({ fcs: data.length, single: true }, blocks), data.length)).toBeNull();
    expect(checkZstdFrame(frame({ checksum: true }, blocks), data.length)).toBeNull();
    expect(checkZstdFrame(frame({ fcs: 1, single: true }, [rle(1)]), 1)).toBeNull();
  });

  it("refuses a declared content size other than the chunk's", () => {
    expect(checkZstdFrame(frame({ fcs: 1000, single: true }, [rle(1000)]), 999)).toMatch(/declares 1000 bytes/);
  });

  it("refuses RLE blocks that would decode far past the chunk (a decompression bomb)", () => {
    // 4 bytes per 128 KiB: 4 MB of these would be 128 GiB.
    const bomb = frame({}, Array.from({ length: 64 }, () => rle(BLOCK_MAX)));
    expect(checkZstdFrame(bomb, 256 * KiB)).toMatch(/could decode to more than/);
  });

  it("refuses blocks that cannot reach the chunk's size", () => {
    expect(checkZstdFrame(frame({}, [rle(10)]), 11)).toMatch(/at most 10 bytes/);
  });

  it("refuses a second frame, a skippable frame and trailing bytes", () => {
    const one = frame({ fcs: 5, single: true }, [rle(5)]);
    expect(checkZstdFrame(Buffer.concat([one, one]), 5)).toMatch(/bytes after the frame/);
    const skippable = Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4]), one]);
    expect(checkZstdFrame(skippable, 5)).toMatch(/magic/);
    expect(checkZstdFrame(Buffer.concat([one, Buffer.from([0])]), 5)).toMatch(/1 bytes after/);
  });

  it("refuses truncation, reserved bits, reserved block types, dictionaries and oversized blocks", () => {
    const one = frame({ fcs: 200, single: true, checksum: true }, [raw(randomBytes(200))]);
    for (let cut = 0; cut < one.length; cut += 7) expect(checkZstdFrame(one.subarray(0, cut), 200)).not.toBeNull();
    const reserved = Buffer.from(one);
    reserved[4] = reserved[4]! | 0x08;
    expect(checkZstdFrame(reserved, 200)).toMatch(/reserved bit/);
    expect(checkZstdFrame(frame({}, [[3, 10, Buffer.alloc(10)]]), 10)).toMatch(/reserved block type/);
    const dict = Buffer.from(one);
    dict[4] = dict[4]! | 0x01;
    expect(checkZstdFrame(dict, 200)).toMatch(/dictionary/);
    expect(checkZstdFrame(frame({}, [raw(randomBytes(BLOCK_MAX + 1))]), BLOCK_MAX + 1)).toMatch(/over the/);
    // A single-segment frame's window is its content size: no block may be bigger.
    expect(checkZstdFrame(frame({ fcs: 300, single: true }, [[2, 301, Buffer.alloc(301)]]), 300)).toMatch(/over the 300-byte/);
  });

  it.skipIf(spawnSync("zstd", ["--version"]).status !== 0)("takes what the zstd tool makes, with and without a content size", () => {
    const logs = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `2026-01-01T00:00:${i % 60} INFO req=${((i * 2654435761) >>> 0).toString(16)} path=/api/${i % 97}\n`).join(""));
    for (const data of [randomBytes(1), randomBytes(1 * KiB * KiB + 3), logs]) {
      // Level 16's block splitter cuts blocks smaller than 128 KiB: the bound must leave room for them.
      const withSize = execFileSync("zstd", ["-c", "-16", `--stream-size=${data.length}`], { input: data, maxBuffer: 64 << 20 });
      const streamed = execFileSync("zstd", ["-c", "-1", "--no-content-size"], { input: data, maxBuffer: 64 << 20 });
      expect(checkZstdFrame(withSize, data.length)).toBeNull();
      expect(checkZstdFrame(streamed, data.length)).toBeNull();
      expect(checkZstdFrame(withSize, data.length + 1)).not.toBeNull();
    }
  });
});

describe("decodeChunk", () => {
  const data = Buffer.from("hello, hello, hello\n".repeat(1000));
  const chunk = (stored: Buffer): RemoteChunk => ({ index: 3, offset: 0, size: data.length, hash: blake3(data), storedOffset: 0, storedSize: stored.length, codec: Codec.ZSTD });
  const stored = frame({ fcs: data.length, single: true }, [raw(data)]);
  const decoder = (out: Buffer | Error): (() => Promise<ZstdDecoder>) => async () => ({ decompress: async () => (out instanceof Error ? Promise.reject(out) : out) });

  it("returns raw chunks as they are and decodes zstd ones", async () => {
    const plain = Buffer.from("x");
    expect(await decodeChunk({ ...chunk(plain), size: 1, codec: Codec.NONE }, plain)).toBe(plain);
    expect((await decodeChunk(chunk(stored), stored, decoder(data))).equals(data)).toBe(true);
  });

  it("fails as untrusted when the decoder's output is not the chunk's size, or it fails", async () => {
    for (const out of [Buffer.concat([data, Buffer.from("!")]), data.subarray(1), new Error("Unknown frame descriptor")]) {
      const err = await decodeChunk(chunk(stored), stored, decoder(out)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PartHttpError);
      expect((err as PartHttpError).kind).toBe("untrusted");
    }
  });

  it("never hands a bad frame to the decoder", async () => {
    let called = false;
    const bomb = frame({}, Array.from({ length: 64 }, () => rle(BLOCK_MAX)));
    const err = await decodeChunk(chunk(bomb), bomb, async () => ({ decompress: async () => ((called = true), data) })).catch((e: unknown) => e);
    expect((err as PartHttpError).kind).toBe("untrusted");
    expect(called).toBe(false);
  });
});

function blake3(b: Buffer): Buffer {
  const h = new Blake3Hasher();
  h.update(b);
  return h.digestBuffer();
}
