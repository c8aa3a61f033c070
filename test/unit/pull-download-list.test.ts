import { create } from "@bufbuild/protobuf";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { describe, expect, it } from "vitest";
import { CliError } from "../../cli/errors.js";
import type { DriveClient } from "../../cli/rpc/drive-client.js";
import { listDownload } from "../../cli/transfer/pull/download-list.js";
import { FileService, GetDownloadResponseSchema, type GetDownloadRequest, type GetDownloadResponse } from "../../gen/drive/v1/file_pb.js";
import { Codec, ContentHashKind } from "../../gen/drive/v1/types_pb.js";
import { contentHash } from "../../shared/rules/content-hash.js";

const never = new AbortController().signal;
const h = (n: number) => Buffer.alloc(32, n);

function clientOf(answer: (req: GetDownloadRequest) => Partial<GetDownloadResponse>): DriveClient {
  const transport = createRouterTransport((router) => router.service(FileService, { getDownload: (req) => create(GetDownloadResponseSchema, answer(req) as never) }));
  return { files: createClient(FileService, transport) } as unknown as DriveClient;
}

/** Four chunks of 100 bytes, pages of `per`, with `edit` applied to each page. */
function serve(per: number, edit: (page: Partial<GetDownloadResponse>, first: number) => void = () => undefined) {
  const all = [0, 1, 2, 3].map((i) => ({ size: 100n, hash: h(i), offset: BigInt(i * 100), storedOffset: BigInt(i * 60), storedSize: 60n, codec: Codec.ZSTD }));
  return clientOf((req) => {
    const first = Number(req.firstChunk);
    const page: Partial<GetDownloadResponse> = {
      file: { path: "f", size: 400n, contentHash: h(9), revision: 3n, contentHashKind: ContentHashKind.BLAKE3 } as never,
      revision: 3n,
      url: `http://store/o?page=${first}`,
      chunkCount: 4n,
      storedSize: 240n,
      chunks: all.slice(first, first + per) as never,
    };
    edit(page, first);
    return page;
  });
}

async function failure(client: DriveClient): Promise<string> {
  const err = await listDownload(client, "f", 0, never).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(CliError);
  expect((err as CliError).kind).toBe("integrity");
  return (err as Error).message;
}

describe("listDownload", () => {
  it("follows pages to the end, pinned to the first page's revision, and keeps the latest URL", async () => {
    const asked: Array<[number, bigint]> = [];
    const file = await listDownload(serve(3), "f", 0, never);
    expect(file.chunks.map((c) => [c.index, c.offset, c.storedOffset])).toEqual([[0, 0, 0], [1, 100, 60], [2, 200, 120], [3, 300, 180]]);
    expect(file.url).toBe("http://store/o?page=3");
    const pinned = await listDownload(
      clientOf((req) => {
        asked.push([Number(req.firstChunk), req.revision]);
        const first = Number(req.firstChunk);
        return {
          file: { path: "f", size: 200n, contentHash: h(9), revision: 5n, contentHashKind: ContentHashKind.BLAKE3 } as never,
          revision: 5n,
          url: "http://store/o",
          chunkCount: 2n,
          chunks: [{ size: 100n, hash: h(first), offset: BigInt(first * 100), storedOffset: BigInt(first * 100), storedSize: 100n, codec: Codec.NONE }] as never,
        };
      }),
      "f",
      0,
      never,
    );
    expect(pinned.chunks).toHaveLength(2);
    expect(asked).toEqual([[0, 0n], [1, 5n]]);
  });

  it("refuses pages that describe another version, stop short, or do not add up", async () => {
    expect(await failure(serve(2, (p, first) => first > 0 && (p.file!.contentHash = h(8))))).toMatch(/another version/);
    expect(await failure(serve(2, (p, first) => first > 0 && (p.chunks = [])))).toMatch(/ends after 2 of 4/);
    expect(await failure(serve(4, (p) => (p.file!.size = 401n)))).toMatch(/add up to 400 bytes, not 401/);
    expect(await failure(serve(4, (p) => (p.chunkCount = 4000n)))).toMatch(/impossible/);
  });

  it("refuses chunks out of place, stored outside the object, or with a codec it does not know", async () => {
    expect(await failure(serve(4, (p) => (p.chunks![2]!.offset = 250n)))).toMatch(/chunk 2 starts at 250, not at 200/);
    expect(await failure(serve(4, (p) => (p.chunks![3]!.storedOffset = 200n)))).toMatch(/outside the 240-byte object/);
    expect(await failure(serve(4, (p) => (p.chunks![1]!.codec = 7 as Codec)))).toMatch(/unknown codec 7/);
    expect(await failure(serve(4, (p) => ((p.chunks![1]!.codec = Codec.NONE), (p.chunks![1]!.storedSize = 60n))))).toMatch(/stored raw in 60 bytes/);
    expect(await failure(serve(4, (p) => (p.chunks![0]!.storedSize = 100_000n)))).toMatch(/impossible stored size/);
    expect(await failure(serve(4, (p) => (p.chunks![0]!.hash = Buffer.alloc(31))))).toMatch(/31-byte hash/);
  });

  it("takes an older server's single page of sizes and hashes, checked against the chunk-list hash", async () => {
    const chunks = [{ size: 5 * 1024 * 1024, hash: h(1) }, { size: 7, hash: h(2) }];
    const older = (hash: Buffer) =>
      clientOf(() => ({
        file: { path: "f", size: BigInt(5 * 1024 * 1024 + 7), contentHash: hash, revision: 1n } as never,
        revision: 1n,
        url: "http://store/o",
        chunks: chunks.map((c) => ({ size: BigInt(c.size), hash: c.hash })) as never,
      }));
    const file = await listDownload(older(contentHash(chunks)), "f", 0, never);
    expect(file.kind).toBe("chunk-list");
    expect(file.chunks[1]).toMatchObject({ offset: 5 * 1024 * 1024, storedOffset: 5 * 1024 * 1024, storedSize: 7, codec: Codec.NONE });
    expect(await failure(older(h(0)))).toMatch(/does not match the content hash/);
  });

  it("takes an empty file with no URL", async () => {
    const empty = new Blake3Hasher().digestBuffer();
    const file = await listDownload(
      clientOf(() => ({ file: { path: "f", size: 0n, contentHash: empty, revision: 2n, contentHashKind: ContentHashKind.BLAKE3 } as never, revision: 2n, url: "", chunkCount: 0n })),
      "f",
      0,
      never,
    );
    expect(file.chunks).toEqual([]);
  });
});
