import { randomBytes } from "node:crypto";
import { appendFile, mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scanFileCached } from "../../cli/transfer/scan-cache.js";
import { scanFile } from "../../cli/transfer/scan-file.js";

let dir: string;
let cacheDir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "drive-scan-cache-"));
  cacheDir = join(dir, "cache");
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const settle = () => new Promise((r) => setTimeout(r, 2100));

/** Bytes hashed by a scan: zero when the cache answered. */
async function hashed(file: string): Promise<{ bytes: number; hash: string; chunks: number }> {
  let bytes = 0;
  const scan = await scanFileCached(file, { cacheDir, onHashed: (n) => (bytes += n) });
  return { bytes, hash: scan.contentHash.toString("hex"), chunks: scan.chunks.length };
}

describe("the scan cache", () => {
  it("answers for a settled, unchanged file without reading it, with the same scan", async () => {
    const file = join(dir, "settled.bin");
    await writeFile(file, randomBytes(3 * 1024 * 1024 + 17));
    await settle();
    const first = await hashed(file);
    expect(first.bytes).toBe(3 * 1024 * 1024 + 17);
    const again = await hashed(file);
    expect(again.bytes).toBe(0);
    const fresh = await scanFile(file);
    expect(again.hash).toBe(fresh.contentHash.toString("hex"));
    expect(again.chunks).toBe(fresh.chunks.length);
  }, 20_000);

  it("scans again after any change: a write, an append, or times set back", async () => {
    const file = join(dir, "changing.bin");
    await writeFile(file, randomBytes(1024 * 1024));
    await settle();
    await hashed(file);
    expect((await hashed(file)).bytes).toBe(0);
    // Same size, mtime put back: ctime still moves, so the entry no longer holds.
    const before = (await import("node:fs")).statSync(file);
    await writeFile(file, randomBytes(1024 * 1024));
    await utimes(file, before.atime, before.mtime);
    const rewritten = await hashed(file);
    expect(rewritten.bytes).toBe(1024 * 1024);
    await appendFile(file, "x");
    expect((await hashed(file)).bytes).toBe(1024 * 1024 + 1);
  }, 20_000);

  it("never caches a file changed in the last two seconds (a write in the same tick would go unseen)", async () => {
    const file = join(dir, "racy.bin");
    await writeFile(file, randomBytes(64 * 1024));
    await hashed(file);
    expect((await hashed(file)).bytes).toBe(64 * 1024);
  });

  it("takes a damaged entry for no entry", async () => {
    const file = join(dir, "damaged.bin");
    await writeFile(file, randomBytes(512 * 1024));
    await settle();
    await hashed(file);
    for (const name of await readdir(cacheDir)) await writeFile(join(cacheDir, name), '{"v":1}\n\x00\x01');
    const again = await hashed(file);
    expect(again.bytes).toBe(512 * 1024);
    expect(again.hash).toBe((await scanFile(file)).contentHash.toString("hex"));
  }, 20_000);

  it("is off with DRIVE_CACHE_DIR=off", async () => {
    const file = join(dir, "off.bin");
    await writeFile(file, randomBytes(1024));
    await settle();
    let bytes = 0;
    await scanFileCached(file, { cacheDir: null, onHashed: (n) => (bytes += n) });
    await scanFileCached(file, { cacheDir: null, onHashed: (n) => (bytes += n) });
    expect(bytes).toBe(2048);
  }, 20_000);
});
