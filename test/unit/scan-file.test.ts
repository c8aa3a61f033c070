import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, open, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunkSizes } from "../../cli/transfer/fastcdc.js";
import { chunkFile, hashChunks, scanFile, THREAD_MIN_SIZE } from "../../cli/transfer/scan-file.js";

const MiB = 1024 * 1024;
const blake3 = (b: Buffer) => new Blake3Hasher().update(b).digestBuffer();

/** Bytes that are the same every run (xorshift32), so failures reproduce. */
function bytes(size: number, seed: number): Buffer {
  const words = new Uint32Array(Math.ceil(size / 4));
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return Buffer.from(words.buffer, 0, size);
}

describe("scanFile", () => {
  let dir: string;
  let big: Buffer;
  let bigPath: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "scan-file-"));
    big = bytes(THREAD_MIN_SIZE + 3 * MiB + 5, 1);
    bigPath = join(dir, "big");
    await writeFile(bigPath, big);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("gives the same chunks and hashes with the worker thread as without, and reports every byte", async () => {
    const seen = { always: 0, never: 0 };
    const threaded = await scanFile(bigPath, { thread: "always", onHashed: (n) => (seen.always += n) });
    const single = await scanFile(bigPath, { thread: "never", onHashed: (n) => (seen.never += n) });
    expect(threaded).toEqual(single);
    expect(seen).toEqual({ always: big.length, never: big.length });
    expect(threaded.chunks.map((c) => c.size)).toEqual(chunkSizes(big));
    let offset = 0;
    for (const c of threaded.chunks) {
      expect(c.offset).toBe(offset);
      expect(c.hash.equals(blake3(big.subarray(c.offset, c.offset + c.size)))).toBe(true);
      offset += c.size;
    }
    expect(threaded.contentHash.equals(blake3(big))).toBe(true);
    expect(threaded.size).toBe(big.length);
    expect(threaded.ino).toBeGreaterThan(0);
  });

  it("threads small files too when told, and empty ones", async () => {
    for (const size of [0, 1, 5 * MiB + 1]) {
      const path = join(dir, `small-${size}`);
      await writeFile(path, big.subarray(0, size));
      const threaded = await scanFile(path, { thread: "always" });
      expect(threaded).toEqual(await scanFile(path, { thread: "never" }));
      expect(threaded.chunks.length).toBe(size === 0 ? 0 : chunkSizes(big.subarray(0, size)).length);
    }
  });

  it("refuses what is not a regular file at once, a FIFO included", async () => {
    await mkdir(join(dir, "folder"));
    await expect(scanFile(join(dir, "folder"))).rejects.toMatchObject({ kind: "usage", message: expect.stringContaining("not a regular file") });
    execFileSync("mkfifo", [join(dir, "fifo")]);
    await expect(scanFile(join(dir, "fifo"))).rejects.toMatchObject({ kind: "usage" });
  });

  it("chunkFile says null when the file ends early, threaded or not", async () => {
    const path = join(dir, "short");
    await writeFile(path, big.subarray(0, 10 * MiB));
    const fh = await open(path, "r");
    try {
      for (const thread of ["always", "never"] as const) expect(await chunkFile(fh, 10 * MiB + 1, { thread })).toBeNull();
      const whole = await chunkFile(fh, 10 * MiB, { thread: "always" });
      expect(whole!.contentHash.equals(blake3(big.subarray(0, 10 * MiB)))).toBe(true);
    } finally {
      await fh.close();
    }
  });

  it("refuses a file that shrinks while it is read, as an integrity error", async () => {
    const path = join(dir, "shrinking");
    await writeFile(path, big);
    const scan = scanFile(path, { thread: "always", onHashed: () => void truncate(path, 1).catch(() => undefined) });
    await expect(scan).rejects.toMatchObject({ kind: "integrity", message: expect.stringContaining("changed while it was being read") });
  });

  it("stops when aborted, threaded or not", async () => {
    for (const thread of ["always", "never"] as const) {
      const ctl = new AbortController();
      const scan = scanFile(bigPath, { thread, signal: ctl.signal, onHashed: () => ctl.abort(new Error("stop")) });
      await expect(scan).rejects.toThrow("stop");
    }
  });

  it("hashChunks checks chunks of known sizes, and says null past the end", async () => {
    const fh = await open(bigPath, "r");
    try {
      const sizes = [1, 5 * MiB, 3, 4 * MiB + 7];
      const hashes = await hashChunks(fh, sizes);
      let at = 0;
      sizes.forEach((s, i) => {
        expect(hashes![i]!.equals(blake3(big.subarray(at, at + s)))).toBe(true);
        at += s;
      });
      expect(await hashChunks(fh, [big.length + 1])).toBeNull();
      expect(await hashChunks(fh, [])).toEqual([]);
    } finally {
      await fh.close();
    }
  });
});
