import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Codec } from "../../gen/drive/v1/types_pb.js";
import { MAX_CHUNK_SIZE, MIN_CHUNK_SIZE } from "../../shared/rules/chunking.js";
import { runDrive } from "../support/drive-cli.js";
import { halfCompressible, logText } from "../support/sample-data.js";
import { readStored } from "../support/stored-layout.js";
import { storeModes, type ModeServer } from "../support/store-modes.js";

const MiB = 1024 * 1024;

/**
 * Push on content-defined chunks: what crosses the wire after an edit, an
 * unchanged file, another part size, and compression, on both stores. What
 * was stored is read back around the CLI's pull (stored-layout.ts): each
 * chunk's stored range, decoded by its codec, checked against its hash.
 */
for (const mode of storeModes) describe.skipIf(mode.skip)(`push delta and compression (${mode.name} store)`, () => {
  let m: ModeServer;
  let dir: string;
  const drive = (args: string[]) => runDrive(args, { server: m.via, token: m.server.adminToken, cwd: dir });
  const stored = (path: string) => readStored(m.server.url, m.server.adminToken, path);

  beforeAll(async () => {
    m = await mode.start({ proxy: true });
    dir = await mkdtemp(join(tmpdir(), "drive-delta-"));
  });
  afterAll(async () => {
    await m?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const original = randomBytes(64 * MiB);
  const edited = Buffer.concat([original.subarray(0, 32 * MiB), randomBytes(MiB), original.subarray(32 * MiB)]);

  it("sends a random file once, raw, and stores it byte for byte", async () => {
    await writeFile(join(dir, "big.bin"), original);
    const push = await drive(["--json", "push", "big.bin", "delta/big.bin"]);
    expect(push.code, push.stderr + push.stdout).toBe(0);
    expect(push.summary).toMatchObject({ bytes_total: original.length, bytes_copied: 0, bytes_compression_saved: 0, revision: 1 });
    // Random data: no more bytes than the file (one small sample per part is all compression cost).
    expect(push.summary!.bytes_transferred).toBe(original.length);
    const v = await stored("delta/big.bin");
    expect(v.data.equals(original)).toBe(true);
    expect(v.chunks.every((c) => c.codec === Codec.NONE)).toBe(true);
    expect(v.storedSize).toBe(original.length);
  });

  it("after 1 MiB inserted in the middle, sends only the bytes around the edit and copies the rest", async () => {
    await writeFile(join(dir, "big.bin"), edited);
    const push = await drive(["--json", "push", "big.bin", "delta/big.bin"]);
    expect(push.code, push.stderr + push.stdout).toBe(0);
    const s = push.summary!;
    expect(s).toMatchObject({ bytes_total: edited.length, revision: 2, deduplicated: false });
    expect(s.bytes_transferred).toBeLessThanOrEqual(12 * MiB);
    expect(s.bytes_copied).toBeGreaterThanOrEqual(edited.length - 12 * MiB);
    expect(s.bytes_transferred + s.bytes_skipped).toBe(edited.length); // nothing compressed: sent + skipped is the file
    expect((await stored("delta/big.bin")).data.equals(edited)).toBe(true);
  });

  it("moves nothing for an unchanged file, or for the same bytes with another part size", async () => {
    const again = await drive(["--json", "push", "big.bin", "delta/big.bin"]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.summary).toMatchObject({ bytes_transferred: 0, deduplicated: true });
    const other = await drive(["--json", "push", "--part-size", "5M", "big.bin", "delta/other-part-size.bin"]);
    expect(other.code, other.stderr).toBe(0);
    expect(other.summary).toMatchObject({ bytes_transferred: 0, deduplicated: true });
  });

  it("stores a text file compressed, one zstd frame per chunk, and it reads back byte-identical", async () => {
    const text = logText(40 * MiB);
    await writeFile(join(dir, "app.log"), text);
    const push = await drive(["--json", "push", "app.log", "delta/app.log"]);
    expect(push.code, push.stderr + push.stdout).toBe(0);
    const s = push.summary!;
    expect(s.bytes_transferred).toBeLessThan(0.35 * text.length);
    expect(s.bytes_compression_saved).toBe(text.length - s.bytes_transferred);
    const v = await stored("delta/app.log");
    expect(v.data.equals(text)).toBe(true);
    expect(v.chunks.every((c) => c.codec === Codec.ZSTD)).toBe(true);
    expect(v.storedSize).toBe(s.bytes_transferred);
  });

  it("after lines appended to a compressed log, copies the stored frames and sends the tail", async () => {
    const log = logText(64 * MiB, 1);
    await writeFile(join(dir, "grow.log"), log);
    expect((await drive(["push", "grow.log", "delta/grow.log"])).code).toBe(0);
    const grown = Buffer.concat([log, logText(MiB, 99)]);
    await writeFile(join(dir, "grow.log"), grown);
    const push = await drive(["--json", "push", "grow.log", "delta/grow.log"]);
    expect(push.code, push.stderr + push.stdout).toBe(0);
    expect(push.summary!.bytes_copied).toBeGreaterThan(56 * MiB);
    expect(push.summary!.bytes_transferred).toBeLessThan(0.02 * grown.length);
    expect((await stored("delta/grow.log")).data.equals(grown)).toBe(true);
  });

  it("compresses data that saves a third once it measured a link slower than its compressor", async () => {
    const data = halfCompressible(96 * MiB, 5);
    await writeFile(join(dir, "mid.bin"), data);
    m.proxy!.upstream.rate = 16 * MiB;
    try {
      // One part at a time: the first goes raw (no PUT measured yet), the rest see a 16 MiB/s link.
      const push = await drive(["--json", "push", "-c", "1", "--part-size", "16M", "mid.bin", "delta/mid.bin"]);
      expect(push.code, push.stderr + push.stdout).toBe(0);
      const s = push.summary!;
      expect(s.bytes_compression_saved).toBeGreaterThan(0);
      expect(s.bytes_transferred).toBeLessThan(0.85 * data.length);
      expect(s.bytes_transferred + s.bytes_compression_saved).toBe(data.length);
    } finally {
      m.proxy!.upstream.rate = Infinity;
    }
    const v = await stored("delta/mid.bin");
    expect(v.data.equals(data)).toBe(true);
    // Some parts raw, some compressed: the choice is made per part.
    expect(v.chunks.some((c) => c.codec === Codec.NONE)).toBe(true);
    expect(v.chunks.some((c) => c.codec === Codec.ZSTD)).toBe(true);
  });

  it("sends a random file raw even when asked to compress always", async () => {
    const data = randomBytes(12 * MiB);
    await writeFile(join(dir, "always.bin"), data);
    const push = await drive(["--json", "push", "--compress", "always", "always.bin", "delta/always.bin"]);
    expect(push.code, push.stderr).toBe(0);
    expect(push.summary).toMatchObject({ bytes_transferred: data.length, bytes_compression_saved: 0 });
    expect((await stored("delta/always.bin")).chunks.every((c) => c.codec === Codec.NONE)).toBe(true);
  });

  it("sends text raw with --compress never", async () => {
    const text = logText(8 * MiB, 7);
    await writeFile(join(dir, "never.log"), text);
    const push = await drive(["--json", "push", "--compress", "never", "never.log", "delta/never.log"]);
    expect(push.code, push.stderr).toBe(0);
    expect(push.summary).toMatchObject({ bytes_transferred: text.length, bytes_compression_saved: 0 });
  });

  // Empty, one byte, one chunk at the minimum and maximum, S3's part minimum and either side of it.
  const sizes = [0, 1, MIN_CHUNK_SIZE, MAX_CHUNK_SIZE, 5 * MiB - 1, 5 * MiB, 5 * MiB + 1, 16 * MiB + 1];
  it.each(sizes)("round-trips %i random bytes", async (size) => {
    const data = randomBytes(size);
    const name = `size-${size}.bin`;
    await writeFile(join(dir, name), data);
    const push = await drive(["--json", "push", name, `sizes/${name}`]);
    expect(push.code, push.stderr + push.stdout).toBe(0);
    expect(push.summary).toMatchObject({ bytes_total: size, bytes_transferred: size });
    const v = await stored(`sizes/${name}`);
    expect(v.size).toBe(size);
    expect(v.data.equals(data)).toBe(true);
  });

  it.each([1, 5 * MiB + 1])("round-trips %i bytes of text, compressed where it is allowed", async (size) => {
    const text = logText(size, size);
    const name = `text-${size}.log`;
    await writeFile(join(dir, name), text);
    const push = await drive(["--json", "push", name, `sizes/${name}`]);
    expect(push.code, push.stderr + push.stdout).toBe(0);
    expect((await stored(`sizes/${name}`)).data.equals(text)).toBe(true);
  });
});
