import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { create } from "@bufbuild/protobuf";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliError } from "../../cli/errors.js";
import type { DriveClient } from "../../cli/rpc/drive-client.js";
import type { TransferEvent } from "../../cli/transfer/events.js";
import type { ChunkScanner } from "../../cli/transfer/pull/find-local-chunks.js";
import { pullFile, type PullRequest } from "../../cli/transfer/pull-file.js";
import { defaultScanner } from "../../cli/transfer/pull/local-scanner.js";
import { chunkFile } from "../../cli/transfer/scan-file.js";
import { FileService, GetDownloadResponseSchema } from "../../gen/drive/v1/file_pb.js";
import { Codec, ContentHashKind } from "../../gen/drive/v1/types_pb.js";
import { contentHash } from "../../shared/rules/content-hash.js";
import { startHostileStore, type HostileStore } from "../support/hostile-store.js";

/**
 * The pull pipeline in-process, on layouts made here: a FileService on
 * connect's router transport lists the chunks (in small pages), and a real
 * HTTP server holds the object and answers ranged GETs, honestly or not.
 * zstd frames are made and decoded by the zstd tool, libzstd itself.
 */
const KiB = 1024;
const haveZstd = spawnSync("zstd", ["--version"]).status === 0;
const zstdTool = async () => ({ decompress: async (frame: Buffer) => execFileSync("zstd", ["-d", "-c"], { input: frame, maxBuffer: 64 << 20 }) });

function blake3(b: Buffer): Buffer {
  const h = new Blake3Hasher();
  h.update(b);
  return h.digestBuffer();
}

interface Layout {
  data: Buffer;
  object: Buffer;
  chunks: Array<{ offset: number; size: number; hash: Buffer; storedOffset: number; storedSize: number; codec: Codec }>;
}

/** Cuts `data` every `size` bytes and stores every chunk `zstd(i)` says as a zstd frame, the rest raw. */
function layout(data: Buffer, size: number, zstd: (i: number) => boolean = () => false): Layout {
  const stored: Buffer[] = [];
  const chunks: Layout["chunks"] = [];
  let storedOffset = 0;
  for (let offset = 0, i = 0; offset < data.length; offset += size, i++) {
    const plain = data.subarray(offset, Math.min(data.length, offset + size));
    const bytes = zstd(i) ? execFileSync("zstd", ["-c", "-3", `--stream-size=${plain.length}`], { input: plain }) : plain;
    chunks.push({ offset, size: plain.length, hash: blake3(plain), storedOffset, storedSize: bytes.length, codec: zstd(i) ? Codec.ZSTD : Codec.NONE });
    stored.push(bytes);
    storedOffset += bytes.length;
  }
  return { data, object: Buffer.concat(stored), chunks };
}

/** `data` cut as a push cuts it (FastCDC, shared rules), stored raw. */
async function cdcLayout(data: Buffer, where: string): Promise<Layout> {
  await writeFile(where, data);
  const fh = await open(where, "r");
  try {
    const { chunks } = (await chunkFile(fh, data.length))!;
    return { data, object: data, chunks: chunks.map((c) => ({ ...c, storedOffset: c.offset, storedSize: c.size, codec: Codec.NONE })) };
  } finally {
    await fh.close();
  }
}

/** A FileService that serves one version of `l`, `pageSize` chunks a page. */
function fakeServer(store: HostileStore, l: Layout, opts: { pageSize?: number; hash?: Buffer; kind?: ContentHashKind; calls?: number[] } = {}): DriveClient {
  const pageSize = opts.pageSize ?? 3;
  const kind = opts.kind ?? ContentHashKind.BLAKE3;
  const hash = opts.hash ?? (kind === ContentHashKind.BLAKE3 ? blake3(l.data) : contentHash(l.chunks));
  const transport = createRouterTransport((router) =>
    router.service(FileService, {
      getDownload(req) {
        opts.calls?.push(Number(req.firstChunk));
        const first = Number(req.firstChunk);
        return create(GetDownloadResponseSchema, {
          file: { path: req.path, size: BigInt(l.data.length), contentHash: hash, revision: 7n, contentHashKind: kind },
          revision: 7n,
          url: l.data.length ? `${store.url}/object?X-Amz-Signature=abc` : "",
          urlExpiresInSeconds: 300n,
          chunkCount: BigInt(l.chunks.length),
          storedSize: BigInt(l.object.length),
          chunks: l.chunks.slice(first, first + pageSize).map((c) => ({
            size: BigInt(c.size),
            hash: c.hash,
            offset: BigInt(c.offset),
            storedOffset: BigInt(c.storedOffset),
            storedSize: BigInt(c.storedSize),
            codec: c.codec,
          })),
        });
      },
    }),
  );
  return { server: "test", files: createClient(FileService, transport), close() {} } as unknown as DriveClient;
}

/** Bytes written to it, in order. */
function collector(): Writable & { bytes(): Buffer } {
  const parts: Buffer[] = [];
  const w = new Writable({ write: (c: Buffer, _e, done) => (parts.push(Buffer.from(c)), done()) });
  return Object.assign(w, { bytes: () => Buffer.concat(parts) });
}

/** Cuts every `size` bytes from 0: a stand-in for FastCDC that finds content at the same offsets only. */
const fixedScanner = (size: number): ChunkScanner => async (fh, total) => {
  const out = [];
  for (let at = 0; at < total; at += size) {
    const n = Math.min(size, total - at);
    const buf = Buffer.alloc(n);
    await fh.read(buf, 0, n, at);
    out.push({ offset: at, size: n, hash: blake3(buf) });
  }
  return out;
};

describe.skipIf(!haveZstd)("the pull pipeline", () => {
  let store: HostileStore;
  let dir: string;
  beforeAll(async () => {
    store = await startHostileStore();
    dir = await mkdtemp(join(tmpdir(), "drive-pipeline-"));
  });
  afterAll(async () => {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function pull(client: DriveClient, extra: Partial<PullRequest> & { local: string }) {
    const events: TransferEvent[] = [];
    const result = await pullFile(
      client,
      { remote: "f.bin", concurrency: 3, partAttempts: 3, readTimeoutMs: 2000, signal: new AbortController().signal, zstd: zstdTool, scanner: null, tuning: { getCap: 200 * KiB, windowBytes: 300 * KiB }, ...extra },
      (e) => events.push(e),
    ).catch((err: unknown) => err);
    const wire = events.reduce((s, e) => s + (e.type === "progress" ? e.bytes : 0), 0);
    return { result, events, wire };
  }

  it("round-trips raw and zstd chunks, listed over several pages, with merged GETs", async () => {
    const text = Buffer.from(Array.from({ length: 30_000 }, (_, i) => `line ${i} status=${i % 7} path=/x/${i % 13}\n`).join(""));
    const data = Buffer.concat([randomBytes(300 * KiB), text, randomBytes(77)]);
    const l = layout(data, 64 * KiB, (i) => i % 2 === 1);
    store.target = l.object;
    const calls: number[] = [];
    const before = store.gets;
    const r = await pull(fakeServer(store, l, { calls }), { local: join(dir, "mixed.bin") });
    expect(r.result).toMatchObject({ contentHashKind: "blake3", size: data.length });
    expect((await readFile(join(dir, "mixed.bin"))).equals(data)).toBe(true);
    expect(calls.slice(0, 3)).toEqual([0, 3, 6]); // pages of 3, in order
    expect(store.gets - before).toBeLessThan(l.chunks.length / 2);
    expect(r.wire).toBe(l.object.length); // stored bytes crossed the wire, not plaintext
    const done = r.events.filter((e) => e.type === "part_done");
    expect(done.map((e) => e.type === "part_done" && e.wireBytes).reduce((a, b) => Number(a) + Number(b), 0)).toBe(l.object.length);
    expect(await readdir(dir)).not.toContain(expect.stringMatching(/drive-partial/));
  });

  it("checks an old chunk-list content hash against the list", async () => {
    const data = randomBytes(200 * KiB);
    const l = layout(data, 64 * KiB);
    store.target = l.object;
    const ok = await pull(fakeServer(store, l, { kind: ContentHashKind.CHUNK_LIST }), { local: join(dir, "old-kind.bin") });
    expect(ok.result).toMatchObject({ contentHashKind: "chunk-list" });
    const bad = await pull(fakeServer(store, l, { kind: ContentHashKind.CHUNK_LIST, hash: Buffer.alloc(32) }), { local: join(dir, "old-kind-bad.bin") });
    expect((bad.result as CliError).kind).toBe("integrity");
  });

  it("refuses a file whose chunks verify but whose BLAKE3 is not the content hash, and keeps nothing", async () => {
    const data = randomBytes(150 * KiB);
    const l = layout(data, 64 * KiB);
    store.target = l.object;
    await writeFile(join(dir, "liar.bin"), "old\n");
    const r = await pull(fakeServer(store, l, { hash: blake3(Buffer.from("something else")) }), { local: join(dir, "liar.bin") });
    expect((r.result as CliError).kind).toBe("integrity");
    expect((r.result as Error).message).toMatch(/not its content hash/);
    expect(await readFile(join(dir, "liar.bin"), "utf8")).toBe("old\n");
    expect((await readdir(dir)).filter((n) => n.startsWith(".liar.bin"))).toEqual([]);
  });

  it("pulls an empty file and a 1-byte one", async () => {
    for (const data of [Buffer.alloc(0), Buffer.from("x")]) {
      const l = layout(data, 64 * KiB);
      store.target = l.object;
      const r = await pull(fakeServer(store, l), { local: join(dir, `small-${data.length}.bin`) });
      expect(r.result).toMatchObject({ size: data.length });
      expect((await readFile(join(dir, `small-${data.length}.bin`))).equals(data)).toBe(true);
    }
  });

  it("refuses a zstd chunk the store swapped for a decompression bomb", async () => {
    const data = Buffer.concat([Buffer.alloc(128 * KiB, 0x61), Buffer.alloc(128 * KiB, 0x62)]);
    const l = layout(data, 128 * KiB, () => true);
    // The second chunk's stored bytes: a frame of RLE blocks 40 × 128 KiB long, same stored size.
    const rle = Buffer.concat(Array.from({ length: 40 }, (_, i) => Buffer.from([...(() => { const h = (((128 * KiB) << 3) | (1 << 1) | (i === 39 ? 1 : 0)) >>> 0; return [h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff]; })(), 0x61])));
    const bomb = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58]), rle]);
    const c = l.chunks[1]!;
    const object = Buffer.concat([l.object.subarray(0, c.storedOffset), bomb]);
    c.storedSize = bomb.length;
    store.target = object;
    const r = await pull(fakeServer(store, { ...l, object }), { local: join(dir, "bomb.bin") });
    expect((r.result as CliError).kind).toBe("integrity");
    expect((r.result as Error).message).toMatch(/could decode to more than/);
  });

  it("streams chunks too big to hold straight to disk, or through a spool to a stream (old versions)", async () => {
    const data = randomBytes(900 * KiB + 1);
    const l = layout(data, 300 * KiB);
    store.target = l.object;
    const client = fakeServer(store, l, { kind: ContentHashKind.CHUNK_LIST });
    const tuning = { getCap: 200 * KiB, windowBytes: 100 * KiB, bufferLimit: 128 * KiB };
    const r = await pull(client, { local: join(dir, "big-chunks.bin"), tuning });
    expect(r.result).toMatchObject({ size: data.length });
    expect((await readFile(join(dir, "big-chunks.bin"))).equals(data)).toBe(true);
    const out = collector();
    const s = await pull(client, { local: "-", output: out, tuning });
    expect(s.result).toMatchObject({ size: data.length });
    expect(out.bytes().equals(data)).toBe(true);
  });

  it("keeps what verified before a connection was cut, and asks only for the rest", async () => {
    const data = randomBytes(640 * KiB);
    const l = layout(data, 64 * KiB);
    store.target = l.object;
    const firsts: number[] = [];
    store.answer = (_n, first) => (firsts.push(first), firsts.length === 1 ? "cut" : "honest");
    try {
      const r = await pull(fakeServer(store, l), { local: join(dir, "cut.bin"), concurrency: 1, tuning: { getCap: 1024 * KiB } });
      expect(r.result).toMatchObject({ size: data.length });
      expect((await readFile(join(dir, "cut.bin"))).equals(data)).toBe(true);
      expect(firsts).toEqual([0, 320 * KiB]); // half the body came, five chunks: the retry starts after them
      expect(r.wire).toBe(data.length);
    } finally {
      store.answer = () => "honest";
    }
  });

  describe("to a stream", () => {
    it("writes the bytes in order", async () => {
      const data = randomBytes(700 * KiB + 5);
      const l = layout(data, 64 * KiB, (i) => i % 3 === 0);
      store.target = l.object;
      const out = collector();
      const r = await pull(fakeServer(store, l), { local: "-", output: out });
      expect(r.result).toMatchObject({ size: data.length });
      expect(out.bytes().equals(data)).toBe(true);
    });

    it("writes nothing past the last good chunk when the store corrupts one", async () => {
      const data = randomBytes(640 * KiB);
      const l = layout(data, 64 * KiB);
      store.target = l.object;
      // Every GET that starts at or after byte 300 KiB has a bit flipped in its middle.
      store.answer = (_n, first) => (first >= 300 * KiB ? "flip" : "honest");
      try {
        const out = collector();
        const r = await pull(fakeServer(store, l), { local: "-", output: out, tuning: { getCap: 128 * KiB, windowBytes: 1024 * KiB } });
        expect((r.result as CliError).kind).toBe("integrity");
        // GETs of two chunks: the one from 384 KiB has its second chunk flipped, every time, so none of it counts;
        // the GET from 512 KiB fails alike. The chunk at 384 KiB verified once, but a GET that lied counts for nothing.
        const got = out.bytes();
        expect(got.length).toBe(384 * KiB);
        expect(got.equals(data.subarray(0, got.length))).toBe(true);
      } finally {
        store.answer = () => "honest";
      }
    });
  });

  describe("local chunks", () => {
    it("reuses an old version overwritten in place and fetches only what changed", async () => {
      const d = join(dir, "over");
      await mkdir(d);
      const old = randomBytes(1024 * KiB);
      const data = Buffer.from(old);
      randomBytes(10 * KiB).copy(data, 500 * KiB);
      await writeFile(join(d, "f.bin"), old);
      const l = layout(data, 64 * KiB);
      store.target = l.object;
      const r = await pull(fakeServer(store, l), { local: join(d, "f.bin"), scanner: fixedScanner(64 * KiB) });
      expect((await readFile(join(d, "f.bin"))).equals(data)).toBe(true);
      expect(r.wire).toBe(64 * KiB); // one chunk changed
      expect(r.result).toMatchObject({ bytesReused: data.length - 64 * KiB });
      const start = r.events.find((e) => e.type === "start");
      expect(start).toMatchObject({ bytesSkipped: data.length - 64 * KiB, partsSkipped: l.chunks.length - 1 });
    });

    it("with the push's own chunker, finds an old version's chunks on both sides of an insert", async () => {
      const d = join(dir, "insert");
      await mkdir(d);
      const old = randomBytes(12 * 1024 * KiB);
      const data = Buffer.concat([old.subarray(0, 5 * 1024 * KiB), randomBytes(256 * KiB), old.subarray(5 * 1024 * KiB)]);
      const l = await cdcLayout(data, join(dir, "insert-new.bin"));
      await writeFile(join(d, "f.bin"), old);
      store.target = l.object;
      const r = await pull(fakeServer(store, l), { local: join(d, "f.bin"), scanner: defaultScanner(), tuning: { getCap: 8 * 1024 * KiB, windowBytes: 32 * 1024 * KiB } });
      expect((await readFile(join(d, "f.bin"))).equals(data)).toBe(true);
      // The chunk the insert lands in, and perhaps a neighbour: at most two 4 MiB chunks, typically about 2 MiB.
      expect(r.wire).toBeGreaterThanOrEqual(256 * KiB);
      expect(r.wire).toBeLessThan(8 * 1024 * KiB);
      expect((r.result as { bytesReused: number }).bytesReused).toBe(data.length - r.wire);
    });

    it("reuses a renamed copy beside the destination", async () => {
      const d = join(dir, "renamed");
      await mkdir(d);
      const data = randomBytes(512 * KiB);
      await writeFile(join(d, "other-name.bin"), data);
      const l = layout(data, 64 * KiB);
      store.target = l.object;
      const r = await pull(fakeServer(store, l), { local: join(d, "f.bin"), scanner: fixedScanner(64 * KiB) });
      expect((await readFile(join(d, "f.bin"))).equals(data)).toBe(true);
      expect(r.wire).toBe(0);
      const none = await pull(fakeServer(store, l), { local: join(d, "g.bin"), scanner: fixedScanner(64 * KiB), reuse: false });
      expect(none.wire).toBe(data.length);
    });

    it("fetches the chunks of a source that changes after its scan", async () => {
      const d = join(dir, "changing");
      await mkdir(d);
      const data = randomBytes(1024 * KiB);
      await writeFile(join(d, "f.bin"), data);
      const l = layout(data, 64 * KiB);
      store.target = l.object;
      const gets = store.gets;
      const r = await pull(fakeServer(store, l), {
        local: join(d, "f.bin"),
        scanner: fixedScanner(64 * KiB),
        // Another writer, between the scan and the reads: the last half changes.
        afterScan: async () => {
          const fh = await open(join(d, "f.bin"), "r+");
          await fh.write(randomBytes(512 * KiB), 0, 512 * KiB, 512 * KiB);
          await fh.close();
        },
      });
      expect((await readFile(join(d, "f.bin"))).equals(data)).toBe(true);
      // The file changed, so nothing more is taken from it: everything not yet read is fetched.
      expect(r.wire).toBeGreaterThanOrEqual(512 * KiB);
      expect((r.result as { bytesReused: number }).bytesReused + r.wire).toBe(data.length);
      // Fetched at their turn, but merged: GETs of three 64 KiB chunks (the 200 KiB cap), not one GET a chunk.
      expect(store.gets - gets).toBeLessThanOrEqual(Math.ceil(r.wire / (192 * KiB)) + 1);
    });

    it("copies repeated content from earlier in the file instead of fetching it again", async () => {
      const block = randomBytes(64 * KiB);
      const data = Buffer.concat([block, randomBytes(64 * KiB), block, block, block]);
      const l = layout(data, 64 * KiB);
      store.target = l.object;
      const r = await pull(fakeServer(store, l), { local: join(dir, "repeats.bin") });
      expect((await readFile(join(dir, "repeats.bin"))).equals(data)).toBe(true);
      expect(r.wire).toBe(128 * KiB);
    });

    it("reuses the leftover of an interrupted pull, then removes it", async () => {
      const d = join(dir, "leftover");
      await mkdir(d);
      const data = randomBytes(640 * KiB);
      const l = layout(data, 64 * KiB);
      store.target = l.object;
      const partial = join(d, `.f.bin.${blake3(data).toString("hex").slice(0, 16)}.drive-partial`);
      await writeFile(partial, data.subarray(0, 300 * KiB));
      const r = await pull(fakeServer(store, l), { local: join(d, "f.bin") });
      expect((await readFile(join(d, "f.bin"))).equals(data)).toBe(true);
      expect(r.result).toMatchObject({ bytesReused: 256 * KiB }); // the four whole chunks in it
      expect(await readdir(d)).toEqual(["f.bin"]);
    });
  });
});
