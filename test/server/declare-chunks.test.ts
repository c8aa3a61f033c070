import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Codec, ContentHashKind } from "../../gen/drive/v1/types_pb.js";
import { PartState } from "../../gen/drive/v1/upload_pb.js";
import { startRpcHarness, type RpcHarness } from "./rpc-harness.js";
import { createRequest, wireChunks as wire } from "./rpc-push.js";
import { fakeSpec } from "./upload-specs.js";

const KiB = 1024;
const codeOf = (err: unknown) => (err instanceof ConnectError ? err.code : err);

/**
 * A chunk list longer than one page: 9,000 chunks of 256 KiB (2.2 GiB that
 * exist nowhere), declared over CreateUpload and DeclareChunks.
 */
describe("DeclareChunks", () => {
  let h: RpcHarness;
  const spec = fakeSpec("big/list.bin", "list", 9000 * 256 * KiB, 256 * KiB);
  let uploadId: string;
  const declare = (firstChunk: number, chunks: ReadonlyArray<{ size: number; hash: Uint8Array }>) =>
    h.uploads.declareChunks({ uploadId, firstChunk: BigInt(firstChunk), chunks: wire(chunks) });
  const refusal = (call: Promise<unknown>) => call.then(() => new Error("the call succeeded"), (e: unknown) => e as Error);

  beforeAll(async () => {
    h = await startRpcHarness();
    const created = await h.uploads.createUpload(createRequest(spec));
    uploadId = created.uploadId;
    expect(created).toMatchObject({ chunksDeclared: 8192n, parts: [], urls: [] });
  });
  afterAll(() => h?.close());

  it("refuses calls that need the plan until every chunk is declared", async () => {
    for (const call of [
      () => h.uploads.presignParts({ uploadId, partNumbers: [1] }),
      () => h.uploads.reportParts({ uploadId, parts: [{ partNumber: 1, etag: "x", codec: Codec.NONE }] }),
      () => h.uploads.completeUpload({ uploadId }),
    ]) {
      const err = await refusal(call());
      expect(codeOf(err), err.message).toBe(Code.FailedPrecondition);
      expect(err.message).toMatch(/8192 of its 9000 chunks declared/);
    }
  });

  it.each([
    ["a gap after the chunks declared", () => declare(8193, spec.chunks.slice(8193)), Code.FailedPrecondition, /gap.*send from chunk 8192/],
    ["a page past chunk_count", () => declare(8192, [...spec.chunks.slice(8192), spec.chunks[0]!]), Code.InvalidArgument, /past chunk_count 9000/],
    ["a retry that changes a chunk", () => declare(8000, [...spec.chunks.slice(8000, 8100), { size: 256 * KiB, hash: Buffer.alloc(32, 1) }]), Code.InvalidArgument, /chunk 8100 differs/],
    ["a chunk under the minimum before the last", () => declare(8192, [{ size: 1000, hash: Buffer.alloc(32, 2) }]), Code.InvalidArgument, /chunk 8192 is 1000 bytes/],
    ["a chunk over the maximum", () => declare(8192, [{ size: 4 * 1024 * KiB + 1, hash: Buffer.alloc(32, 2) }]), Code.InvalidArgument, /over the .* chunk maximum/],
    ["a last page that does not add up to size", () => declare(8192, [...spec.chunks.slice(8192, 8999), { size: 1000, hash: Buffer.alloc(32, 2) }]), Code.InvalidArgument, /add up/],
    ["a hash of the wrong length", () => declare(8192, [{ size: 256 * KiB, hash: Buffer.alloc(31) }]), Code.InvalidArgument, /32 bytes/],
    ["a negative first_chunk", () => h.uploads.declareChunks({ uploadId, firstChunk: -1n, chunks: [] }), Code.InvalidArgument, /negative/],
  ])("refuses %s", async (_label, call, code, message) => {
    const err = await refusal(call());
    expect(codeOf(err), err.message).toBe(code);
    expect(err.message).toMatch(message);
    // Nothing changed: the next page in order still goes through below.
  });

  it("takes a retry of pages already declared, then plans with the last page, and answers a retry of that with the same plan", async () => {
    expect((await declare(0, spec.chunks.slice(0, 8192))).chunksDeclared).toBe(8192n);
    expect((await declare(100, spec.chunks.slice(100, 200))).chunksDeclared).toBe(8192n);

    const last = await declare(8192, spec.chunks.slice(8192));
    expect(last.chunksDeclared).toBe(9000n);
    expect(last.parts.length).toBeGreaterThan(100);
    expect(last.parts.reduce((n, p) => n + p.chunkCount, 0)).toBe(9000);
    expect(last.parts.reduce((n, p) => n + p.size, 0n)).toBe(BigInt(spec.size));
    expect(last.urls.map((u) => u.partNumber)).toEqual(last.parts.slice(0, 64).map((p) => p.partNumber));

    const retry = await declare(8192, spec.chunks.slice(8192));
    expect(retry.parts).toEqual(last.parts);
    const resumed = await h.uploads.createUpload(createRequest(spec));
    expect(resumed).toMatchObject({ uploadId, resumed: true, chunksDeclared: 9000n });
    expect(resumed.parts.map((p) => p.state)).toEqual(last.parts.map(() => PartState.PENDING));
  });

  it("presigns only parts of the plan", async () => {
    const err = await refusal(h.uploads.presignParts({ uploadId, partNumbers: [9999] }));
    expect(codeOf(err)).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(/not in this upload/);
    const { urls } = await h.uploads.presignParts({ uploadId, partNumbers: [2, 2, 1] });
    expect(urls.map((u) => u.partNumber)).toEqual([2, 1]);
  });

  it("refuses a CreateUpload whose first page can never add up", async () => {
    const err = await refusal(
      h.uploads.createUpload({
        path: "big/short.bin",
        size: BigInt(9000 * 256 * KiB),
        contentHash: Buffer.alloc(32, 3),
        contentHashKind: ContentHashKind.BLAKE3,
        chunkCount: 9000n,
        // 8,192 chunks of 4 MiB already pass the size.
        chunks: wire(Array.from({ length: 8192 }, (_, i) => ({ size: 4 * 1024 * KiB, hash: Buffer.alloc(32, i % 251) }))),
      }),
    );
    expect(codeOf(err)).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(/cannot hold/);
  });
});
