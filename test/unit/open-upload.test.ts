import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ContentHashKind } from "../../gen/drive/v1/types_pb.js";
import { CreateUploadResponseSchema, DeclareChunksResponseSchema, PartStatusSchema, type CreateUploadRequest, type DeclareChunksRequest } from "../../gen/drive/v1/upload_pb.js";
import type { DriveClient } from "../../cli/rpc/drive-client.js";
import { checkPlan, openUpload } from "../../cli/transfer/open-upload.js";
import { MAX_CHUNKS_PER_PAGE } from "../../shared/rules/chunking.js";

const never = new AbortController().signal;
const KiB = 1024;

/** A scan of `n` chunks of 256 KiB (what the paging needs; the bytes do not matter here). */
function scanOf(n: number) {
  const chunks = Array.from({ length: n }, (_, i) => ({ offset: i * 256 * KiB, size: 256 * KiB, hash: Buffer.alloc(32, i % 251) }));
  return { size: n * 256 * KiB, mtimeMs: 0, ino: 0, dev: 0, chunks, contentHash: Buffer.alloc(32, 7) };
}

/**
 * The paging of a chunk list against a server that holds `already` chunks
 * of an open upload. A stand-in for the two RPCs: the real ones need a file
 * of 2 GiB (8,193 chunks of the minimum size) to page at all, and their
 * server side is tested against real requests in test/server.
 */
function fakeServer(total: number, already: number) {
  const calls: Array<{ first: number; count: number }> = [];
  let declared = already;
  const plan = () => [create(PartStatusSchema, { partNumber: 1, firstChunk: 0n, chunkCount: total, size: BigInt(total * 256 * KiB), state: 1 })];
  const client = {
    uploads: {
      async createUpload(req: CreateUploadRequest) {
        expect(req.contentHashKind).toBe(ContentHashKind.BLAKE3);
        expect(Number(req.chunkCount)).toBe(total);
        expect(req.chunks.length).toBe(Math.min(total, MAX_CHUNKS_PER_PAGE));
        calls.push({ first: 0, count: req.chunks.length });
        if (declared === 0) declared = req.chunks.length;
        return create(CreateUploadResponseSchema, { uploadId: "u1", resumed: already > 0, chunksDeclared: BigInt(declared), parts: declared === total ? plan() : [] });
      },
      async declareChunks(req: DeclareChunksRequest) {
        expect(Number(req.firstChunk)).toBe(declared);
        expect(req.chunks.length).toBeLessThanOrEqual(MAX_CHUNKS_PER_PAGE);
        calls.push({ first: Number(req.firstChunk), count: req.chunks.length });
        declared += req.chunks.length;
        return create(DeclareChunksResponseSchema, { chunksDeclared: BigInt(declared), parts: declared === total ? plan() : [] });
      },
    },
  } as unknown as DriveClient;
  return { client, calls };
}

const request = { remote: "a", partSize: 16 * 1024 * KiB, presignWindow: 24, signal: never };

describe("openUpload", () => {
  it("declares a chunk list past one page in pages of 8,192, in order", async () => {
    const total = 2 * MAX_CHUNKS_PER_PAGE + 5;
    const { client, calls } = fakeServer(total, 0);
    const opened = await openUpload(client, request, scanOf(total));
    expect(calls).toEqual([
      { first: 0, count: MAX_CHUNKS_PER_PAGE },
      { first: MAX_CHUNKS_PER_PAGE, count: MAX_CHUNKS_PER_PAGE },
      { first: 2 * MAX_CHUNKS_PER_PAGE, count: 5 },
    ]);
    expect(opened.committed).toBeUndefined();
    expect(opened.committed ? [] : opened.parts).toHaveLength(1);
  });

  it("resumes declaring where the server's chunks_declared stands", async () => {
    const total = 2 * MAX_CHUNKS_PER_PAGE + 5;
    const { client, calls } = fakeServer(total, MAX_CHUNKS_PER_PAGE + 100);
    await openUpload(client, request, scanOf(total));
    expect(calls.slice(1)).toEqual([{ first: MAX_CHUNKS_PER_PAGE + 100, count: total - MAX_CHUNKS_PER_PAGE - 100 }]);
  });
});

describe("checkPlan", () => {
  const scan = scanOf(4);
  const part = (partNumber: number, firstChunk: number, chunkCount: number, size = chunkCount * 256 * KiB) =>
    create(PartStatusSchema, { partNumber, firstChunk: BigInt(firstChunk), chunkCount, size: BigInt(size) });

  it("takes a plan that covers every chunk once, in order", () => {
    expect(() => checkPlan([part(1, 0, 3), part(2, 3, 1)], scan)).not.toThrow();
  });

  it("refuses gaps, overlaps, wrong sizes, chunks past the end and a short plan", () => {
    expect(() => checkPlan([part(1, 0, 2), part(2, 3, 1)], scan)).toThrow(/part 2/);
    expect(() => checkPlan([part(1, 0, 3), part(2, 2, 2)], scan)).toThrow(/part 2/);
    expect(() => checkPlan([part(1, 0, 4, 5)], scan)).toThrow(/part 1/);
    expect(() => checkPlan([part(1, 0, 5)], scan)).toThrow(/part 1/);
    expect(() => checkPlan([part(1, 0, 3)], scan)).toThrow(/covers 3 of 4/);
    expect(() => checkPlan([part(2, 0, 4)], scan)).toThrow(/part 2/);
  });
});
