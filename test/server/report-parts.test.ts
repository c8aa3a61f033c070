import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema, ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import { Codec, ContentHashKind } from "../../gen/drive/v1/types_pb.js";
import type { CreateUploadResponse } from "../../gen/drive/v1/upload_pb.js";
import { startRpcHarness, type RpcHarness } from "./rpc-harness.js";
import { get, put } from "./rpc-push.js";
import { specOf } from "./upload-specs.js";

const MiB = 1024 * 1024;
const codeOf = (err: unknown) => (err instanceof ConnectError ? err.code : err);
const reasonOf = (err: unknown) => (err instanceof ConnectError ? err.findDetails(ErrorInfoSchema)[0]?.reason : undefined);

/**
 * ReportParts' codec rules, and CompleteUpload holding each report to the
 * store's listing. The server never reads stored bytes, so the "zstd
 * frames" here are random bytes of the sizes reported: the layout is what
 * is under test, not the codec.
 */
describe("part reports", () => {
  let h: RpcHarness;
  beforeAll(async () => {
    h = await startRpcHarness();
  });
  afterAll(() => h?.close());

  /** An open upload of `mib` MiB in 1 MiB chunks (or of `data`), planned. */
  async function open(path: string, mib: number, data = randomBytes(mib * MiB), partSize = 0): Promise<CreateUploadResponse> {
    const spec = specOf(path, data);
    return h.uploads.createUpload({
      path,
      size: BigInt(spec.size),
      contentHash: spec.contentHash,
      contentHashKind: ContentHashKind.BLAKE3,
      chunkCount: BigInt(spec.chunkCount),
      chunks: spec.chunks.map((c) => ({ size: BigInt(c.size), hash: c.hash })),
      presignWindow: 1000,
      partSize: BigInt(partSize),
    });
  }
  const frames = (n: number, size: number) => Array.from({ length: n }, () => BigInt(size));

  const zstdData = randomBytes(40 * MiB);

  it("stores zstd parts' frame sizes and serves each chunk's stored range from them", async () => {
    // The smallest part size: content-defined parts of 5 to 20 MiB, so 40 MiB makes two or more.
    const created = await open("r/zstd.bin", 40, zstdData, 5 * MiB);
    expect(created.parts.length).toBeGreaterThanOrEqual(2);
    const reports = [];
    const layout: Array<{ storedSize: number; codec: Codec }> = [];
    for (const [i, part] of created.parts.entries()) {
      // A 700 KiB frame per chunk, or 1,000 bytes in the last part; a part that would fall under S3's
      // 5 MiB minimum so is stored raw, as a client would store it.
      const last = i === created.parts.length - 1;
      const frame = last ? 1000 : 700 * 1024;
      const zstd = last || frame * part.chunkCount >= 5 * MiB;
      for (let k = 0; k < part.chunkCount; k++) layout.push(zstd ? { storedSize: frame, codec: Codec.ZSTD } : { storedSize: MiB, codec: Codec.NONE });
      const etag = await put(created.urls[i]!, randomBytes(zstd ? frame * part.chunkCount : Number(part.size)));
      reports.push(zstd ? { partNumber: part.partNumber, etag, codec: Codec.ZSTD, storedSizes: frames(part.chunkCount, frame) } : { partNumber: part.partNumber, etag, codec: Codec.NONE });
    }
    expect(layout.some((c) => c.codec === Codec.ZSTD)).toBe(true);
    await h.uploads.reportParts({ uploadId: created.uploadId, parts: reports });
    await h.uploads.completeUpload({ uploadId: created.uploadId });

    const dl = await h.files.getDownload({ path: "r/zstd.bin" });
    const total = layout.reduce((a, c) => a + c.storedSize, 0);
    expect(dl.storedSize).toBe(BigInt(total));
    expect(dl.file?.size).toBe(BigInt(40 * MiB));
    let at = 0;
    dl.chunks.forEach((c, i) => {
      expect(c).toMatchObject({ offset: BigInt(i * MiB), size: BigInt(MiB), storedOffset: BigInt(at), storedSize: BigInt(layout[i]!.storedSize), codec: layout[i]!.codec });
      at += layout[i]!.storedSize;
    });
    expect((await get(dl.url)).length).toBe(total);
  });

  it("copies zstd chunks as they are stored: a copied run keeps its frames and codec", async () => {
    const v1 = await h.files.getDownload({ path: "r/zstd.bin" });
    const created = await open("r/zstd-v2.bin", 0, Buffer.concat([zstdData, randomBytes(MiB)]), 5 * MiB);
    const copies = created.parts.filter((p) => p.serverCopy);
    expect(copies.length).toBeGreaterThan(0);
    const reports = [];
    for (const url of created.urls) {
      const part = created.parts[url.partNumber - 1]!;
      reports.push({ partNumber: part.partNumber, etag: await put(url, randomBytes(Number(part.size))), codec: Codec.NONE });
    }
    await h.uploads.reportParts({ uploadId: created.uploadId, parts: reports });
    await h.uploads.completeUpload({ uploadId: created.uploadId });

    const v2 = await h.files.getDownload({ path: "r/zstd-v2.bin" });
    let at = 0n;
    v2.chunks.forEach((c, i) => {
      const copied = copies.some((p) => BigInt(i) >= p.firstChunk && BigInt(i) < p.firstChunk + BigInt(p.chunkCount));
      if (copied) expect(c, `chunk ${i}`).toMatchObject({ codec: v1.chunks[i]!.codec, storedSize: v1.chunks[i]!.storedSize });
      else expect(c, `chunk ${i}`).toMatchObject({ codec: Codec.NONE, storedSize: c.size });
      expect(c.storedOffset).toBe(at);
      at += c.storedSize;
    });
    expect(v2.storedSize).toBe(at);
    // The copied frames are the stored bytes of v1, byte for byte.
    const c = copies[0]!;
    const first = v2.chunks[Number(c.firstChunk)]!;
    const last = v2.chunks[Number(c.firstChunk) + c.chunkCount - 1]!;
    const src = v1.chunks[Number(c.firstChunk)]!;
    const range = (d: typeof v2, a: typeof first, b: typeof first) => get(d.url, `bytes=${a.storedOffset}-${b.storedOffset + b.storedSize - 1n}`);
    expect((await range(v2, first, last)).equals(await range(v1, src, v1.chunks[Number(c.firstChunk) + c.chunkCount - 1]!))).toBe(true);
  });

  it("refuses a part whose stored size the listing does not bear out: PARTS_UNCONFIRMED", async () => {
    // Under the 5 MiB part minimum: one part, whatever boundaries the content gives.
    const created = await open("r/lying.bin", 4.5);
    const part = created.parts[0]!;
    expect(created.parts).toHaveLength(1);
    // Sent raw (4.5 MiB), reported as zstd frames adding up to less.
    const etag = await put(created.urls[0]!, randomBytes(4.5 * MiB));
    await h.uploads.reportParts({ uploadId: created.uploadId, parts: [{ partNumber: 1, etag, codec: Codec.ZSTD, storedSizes: frames(part.chunkCount, 1000) }] });
    const err = await h.uploads.completeUpload({ uploadId: created.uploadId }).catch((e: unknown) => e);
    expect(codeOf(err)).toBe(Code.FailedPrecondition);
    expect(reasonOf(err)).toBe(ErrorReason.PARTS_UNCONFIRMED);

    // Sent short, reported raw: the same.
    const short = await put(created.urls[0]!, randomBytes(6000));
    await h.uploads.reportParts({ uploadId: created.uploadId, parts: [{ partNumber: 1, etag: short, codec: Codec.NONE }] });
    expect(reasonOf(await h.uploads.completeUpload({ uploadId: created.uploadId }).catch((e: unknown) => e))).toBe(ErrorReason.PARTS_UNCONFIRMED);

    // Told the truth, it completes: frames adding up to the 6,000 bytes stored.
    const truthful = frames(part.chunkCount, Math.floor(6000 / part.chunkCount));
    truthful[truthful.length - 1]! += BigInt(6000 - Math.floor(6000 / part.chunkCount) * part.chunkCount);
    await h.uploads.reportParts({ uploadId: created.uploadId, parts: [{ partNumber: 1, etag: short, codec: Codec.ZSTD, storedSizes: truthful }] });
    expect((await h.uploads.completeUpload({ uploadId: created.uploadId })).file?.size).toBe(BigInt(4.5 * MiB));
  });

  it("refuses reports that break the codec rules, with InvalidArgument and nothing stored", async () => {
    const created = await open("r/rules.bin", 40, undefined, 5 * MiB); // two parts or more
    const n = created.parts[0]!.chunkCount;
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ["raw with frame sizes", { partNumber: 1, codec: Codec.NONE, storedSizes: [1n] }, /must be empty for CODEC_NONE/],
      ["no codec", { partNumber: 1, codec: Codec.UNSPECIFIED }, /codec must be/],
      ["a frame per chunk missing", { partNumber: 1, codec: Codec.ZSTD, storedSizes: frames(n - 1, MiB / 2) }, new RegExp(`${n - 1} entries for the part's ${n} chunks`)],
      ["an empty frame", { partNumber: 1, codec: Codec.ZSTD, storedSizes: [0n, ...frames(n - 1, MiB / 2)] }, /stored_sizes\[0\] is 0/],
      ["frames that do not shrink the part", { partNumber: 1, codec: Codec.ZSTD, storedSizes: frames(n, MiB) }, /do not shrink/],
      ["a part before the last under 5 MiB stored", { partNumber: 1, codec: Codec.ZSTD, storedSizes: frames(n, 1000) }, /under S3's/],
      ["a part not in the plan", { partNumber: created.parts.length + 1, codec: Codec.NONE }, /not in this upload/],
    ];
    for (const [label, report, message] of cases) {
      const err = await h.uploads.reportParts({ uploadId: created.uploadId, parts: [{ etag: "e", ...report }] }).catch((e: unknown) => e);
      expect(codeOf(err), label).toBe(Code.InvalidArgument);
      expect((err as Error).message, label).toMatch(message);
    }
    expect(await h.deps.db.selectFrom("upload_parts").select("part_number").where("upload_id", "=", created.uploadId).execute()).toEqual([]);
    // The last part has no minimum.
    const last = created.parts[created.parts.length - 1]!;
    await h.uploads.reportParts({ uploadId: created.uploadId, parts: [{ partNumber: last.partNumber, etag: "e", codec: Codec.ZSTD, storedSizes: frames(last.chunkCount, 10) }] });
  });

  it("caps a call at 1,000 reports and 65,536 frame sizes", async () => {
    const created = await open("r/caps.bin", 6);
    const tooMany = Array.from({ length: 1001 }, (_, i) => ({ partNumber: 1 + (i % 3), etag: "e", codec: Codec.NONE }));
    expect(codeOf(await h.uploads.reportParts({ uploadId: created.uploadId, parts: tooMany }).catch((e: unknown) => e))).toBe(Code.InvalidArgument);
    const heavy = Array.from({ length: 1000 }, () => ({ partNumber: 1, etag: "e", codec: Codec.ZSTD, storedSizes: frames(66, 1) }));
    const err = await h.uploads.reportParts({ uploadId: created.uploadId, parts: heavy }).catch((e: unknown) => e);
    expect(codeOf(err)).toBe(Code.InvalidArgument);
    expect((err as Error).message).toMatch(/66000 stored_sizes, over the 65536/);
  });
});
