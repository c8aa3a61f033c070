import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spoolStream } from "../../cli/transfer/push-stream.js";
import { scanFile } from "../../cli/transfer/scan-file.js";

const MiB = 1024 * 1024;

describe("spoolStream", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "drive-spool-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("chunks and hashes a stream as a scan of the same bytes would, in slices of any size", async () => {
    const data = randomBytes(9 * MiB + 777);
    await writeFile(join(dir, "same.bin"), data);
    const expected = await scanFile(join(dir, "same.bin"));
    // Slices of odd sizes, as a pipe hands them out.
    const slices: Buffer[] = [];
    for (let at = 0, n = 1; at < data.length; at += n, n = (n * 7 + 13) % 300_000 || 1) slices.push(data.subarray(at, at + n));
    const spoolDir = await mkdtemp(join(dir, "s-"));
    const spool = await spoolStream(Readable.from(slices), { signal: new AbortController().signal, dir: spoolDir });
    try {
      expect(spool.scan.size).toBe(data.length);
      expect(spool.scan.contentHash.equals(expected.contentHash)).toBe(true);
      expect(spool.scan.chunks).toEqual(expected.chunks);
      expect((await readFile(spool.path)).equals(data)).toBe(true);
      // Private, and already gone from the folder: nothing is left even after a SIGKILL.
      expect((await stat(spool.path)).mode & 0o777).toBe(0o600);
      expect(await readdir(spoolDir)).toEqual([]);
    } finally {
      await spool.close();
    }
  });

  it("spools an empty stream as an empty file with no chunks", async () => {
    const spool = await spoolStream(Readable.from([]), { signal: new AbortController().signal, dir });
    try {
      expect(spool.scan.size).toBe(0);
      expect(spool.scan.chunks).toEqual([]);
      // BLAKE3 of nothing, what `b3sum` prints for an empty file.
      expect(spool.scan.contentHash.toString("hex")).toBe("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
    } finally {
      await spool.close();
    }
  });

  it("stops at an abort while the input is idle, and leaves nothing behind", async () => {
    const spoolDir = await mkdtemp(join(dir, "a-"));
    const input = new PassThrough();
    input.write(randomBytes(MiB));
    const ctl = new AbortController();
    const run = spoolStream(input, { signal: ctl.signal, dir: spoolDir });
    setTimeout(() => ctl.abort(new Error("interrupted by SIGINT")), 50);
    await expect(run).rejects.toThrow("interrupted by SIGINT");
    expect(await readdir(spoolDir)).toEqual([]);
  });
});
