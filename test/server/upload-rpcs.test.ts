import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Codec, ContentHashKind } from "../../gen/drive/v1/types_pb.js";
import { PartState } from "../../gen/drive/v1/upload_pb.js";
import { startRpcHarness, type RpcHarness } from "./rpc-harness.js";
import { chunkOffsets, createRequest, get, partBytes, pushRpc, put } from "./rpc-push.js";
import { specOf } from "./upload-specs.js";

const MiB = 1024 * 1024;
const blake3 = (data: Buffer) => new Blake3Hasher().update(data).digestBuffer();
const codeOf = (err: unknown) => (err instanceof ConnectError ? err.code : err);

describe("an upload through the RPCs, on the local store", () => {
  let h: RpcHarness;
  beforeAll(async () => {
    h = await startRpcHarness();
  });
  afterAll(() => h?.close());

  it("plans parts of whole chunks, takes raw PUTs and their reports, and serves the stored layout back", async () => {
    const data = randomBytes(40 * MiB + 12_345);
    const pushed = await pushRpc(h, "a/one.bin", data);
    // 41 chunks of 1 MiB grouped around the default 16 MiB part size, none copied (nothing is stored yet).
    expect(pushed.parts.length).toBeGreaterThanOrEqual(2);
    expect(pushed.parts.every((p) => !p.serverCopy && p.state === PartState.PENDING)).toBe(true);
    expect(pushed.sent).toEqual(pushed.parts.map((p) => p.partNumber));
    let next = 0n;
    for (const p of pushed.parts) {
      expect(p.firstChunk).toBe(next);
      next += BigInt(p.chunkCount);
    }
    expect(next).toBe(41n);
    expect(pushed.file).toMatchObject({ path: "a/one.bin", size: BigInt(data.length), revision: 1n, contentHashKind: ContentHashKind.BLAKE3 });
    expect(Buffer.from(pushed.file.contentHash).equals(blake3(data))).toBe(true);

    const dl = await h.files.getDownload({ path: "a/one.bin" });
    expect(dl.chunkCount).toBe(41n);
    expect(dl.storedSize).toBe(BigInt(data.length));
    expect(dl.file?.contentHashKind).toBe(ContentHashKind.BLAKE3);
    const offsets = chunkOffsets(specOf("x", data).chunks);
    dl.chunks.forEach((c, i) => {
      expect(c).toMatchObject({ offset: BigInt(offsets[i]!), storedOffset: BigInt(offsets[i]!), storedSize: c.size, codec: Codec.NONE });
      expect(Buffer.from(c.hash).equals(blake3(data.subarray(offsets[i]!, offsets[i + 1]!)))).toBe(true);
    });
    expect((await get(dl.url)).equals(data)).toBe(true);
    // One chunk alone, by its stored range.
    const c = dl.chunks[7]!;
    expect((await get(dl.url, `bytes=${c.storedOffset}-${c.storedOffset + c.storedSize - 1n}`)).equals(data.subarray(7 * MiB, 8 * MiB))).toBe(true);

    const { file } = await h.files.stat({ path: "a/one.bin" });
    expect(file?.contentHashKind).toBe(ContentHashKind.BLAKE3);
    const { versions } = await h.files.listVersions({ path: "a/one.bin" });
    expect(versions.map((v) => v.contentHashKind)).toEqual([ContentHashKind.BLAKE3]);
    const journal = await h.deps.db.selectFrom("journal").select(["op", "content_hash_kind"]).where("path", "=", "a/one.bin").execute();
    expect(journal).toEqual([{ op: "put", content_hash_kind: 1 }]);
  });

  it("commits the same bytes to another path at once, and an empty file with the BLAKE3 of no bytes", async () => {
    const data = randomBytes(6 * MiB);
    await pushRpc(h, "a/two.bin", data);
    const again = await h.uploads.createUpload(createRequest(specOf("a/two-copy.bin", data)));
    expect(again.committed).toMatchObject({ path: "a/two-copy.bin", size: BigInt(data.length), contentHashKind: ContentHashKind.BLAKE3 });

    const empty = await h.uploads.createUpload(createRequest(specOf("a/empty", Buffer.alloc(0))));
    expect(empty.committed).toMatchObject({ size: 0n, contentHashKind: ContentHashKind.BLAKE3 });
    expect(Buffer.from(empty.committed!.contentHash).equals(blake3(Buffer.alloc(0)))).toBe(true);
    const dl = await h.files.getDownload({ path: "a/empty" });
    expect(dl).toMatchObject({ url: "", chunkCount: 0n, storedSize: 0n, chunks: [] });
  });

  it("refuses a client that predates BLAKE3 content hashes, telling it to upgrade", async () => {
    const req = createRequest(specOf("a/old.bin", randomBytes(1000)), { contentHashKind: ContentHashKind.UNSPECIFIED });
    const err = await h.uploads.createUpload(req).catch((e: unknown) => e);
    expect(codeOf(err)).toBe(Code.InvalidArgument);
    expect((err as Error).message).toMatch(/upgrade/);
  });

  it.each([
    ["a part size under 5 MiB", { partSize: BigInt(5 * MiB - 1) }, /part_size/],
    ["a part size over 5 GiB", { partSize: BigInt(5 * 1024 * MiB + 1) }, /part_size/],
    ["a chunk_count past what the size allows", { chunkCount: 100n }, /chunk_count 100 is over/],
    ["a chunk_count below the chunks sent", { chunkCount: 1n }, /past chunk_count/],
    ["sizes that do not add up", { size: BigInt(3 * MiB + 1) }, /add up/],
    ["an empty file whose hash is not BLAKE3 of nothing", { size: 0n, chunkCount: 0n, chunks: [] }, /empty file/],
  ])("refuses %s with InvalidArgument", async (_label, change, message) => {
    const err = await h.uploads.createUpload(createRequest(specOf("a/bad.bin", randomBytes(3 * MiB)), change)).catch((e: unknown) => e);
    expect(codeOf(err), String(err)).toBe(Code.InvalidArgument);
    expect((err as Error).message).toMatch(message);
  });

  it("refuses a one-chunk file whose content hash is not its chunk's hash", async () => {
    const spec = specOf("a/one-chunk.bin", randomBytes(1000));
    const err = await h.uploads.createUpload(createRequest(spec, { contentHash: Buffer.alloc(32, 1) })).catch((e: unknown) => e);
    expect(codeOf(err)).toBe(Code.InvalidArgument);
  });

  it("resumes with part states from the store: a part PUT but never reported comes back with its ETag to vouch for", async () => {
    const data = randomBytes(40 * MiB);
    const spec = specOf("a/resume.bin", data);
    const created = await h.uploads.createUpload({ ...createRequest(spec), presignWindow: 1 });
    expect(created.urls.map((u) => u.partNumber)).toEqual([1]);
    expect(created.urls[0]!.maxSize).toBe(created.parts[0]!.size);
    const offsets = chunkOffsets(spec.chunks);
    const etag = await put(created.urls[0]!, partBytes(data, offsets, created.parts[0]!));

    const resumed = await h.uploads.createUpload(createRequest(spec));
    expect(resumed).toMatchObject({ uploadId: created.uploadId, resumed: true, chunksDeclared: BigInt(spec.chunkCount) });
    expect(resumed.parts[0]).toMatchObject({ state: PartState.PENDING, storedEtag: etag });
    expect(resumed.urls.map((u) => u.partNumber)).toEqual(resumed.parts.map((p) => p.partNumber));

    await h.uploads.reportParts({ uploadId: created.uploadId, parts: [{ partNumber: 1, etag, codec: Codec.NONE }] });
    const again = await h.uploads.createUpload(createRequest(spec));
    expect(again.parts[0]).toMatchObject({ state: PartState.STORED, storedEtag: "" });
    expect(again.urls.map((u) => u.partNumber)).not.toContain(1);
    await h.uploads.abortUpload({ uploadId: created.uploadId });
  });

  it("refuses a PUT longer than the part's plaintext, and CompleteUpload refuses a part stored at another size than reported", async () => {
    const data = randomBytes(6 * MiB);
    const spec = specOf("a/long.bin", data);
    const created = await h.uploads.createUpload(createRequest(spec));
    const url = created.urls[0]!;
    // Part 1 holds whatever whole chunks the plan gave it.
    const body = data.subarray(0, Number(created.parts[0]!.size));
    expect(Number(url.maxSize)).toBe(body.length);
    const tooLong = await fetch(url.url, { method: "PUT", body: Buffer.concat([body, Buffer.alloc(1)]) });
    expect(tooLong.status).toBe(413);
    const etag = await put(url, body.subarray(1));
    await h.uploads.reportParts({ uploadId: created.uploadId, parts: [{ partNumber: 1, etag, codec: Codec.NONE }] });
    const err = await h.uploads.completeUpload({ uploadId: created.uploadId }).catch((e: unknown) => e);
    expect(codeOf(err)).toBe(Code.FailedPrecondition);
    expect((err as Error).message).toMatch(/wrong size or unconfirmed bytes: 1/);
  });
});
