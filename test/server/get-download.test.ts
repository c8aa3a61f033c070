import { Code, ConnectError } from "@connectrpc/connect";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Codec, ContentHashKind } from "../../gen/drive/v1/types_pb.js";
import { commitVersion } from "../../server/files/commit-version.js";
import type { HashKind } from "../../server/metadata/schema.js";
import { startRpcHarness, type RpcHarness } from "./rpc-harness.js";

const KiB = 1024;

describe("GetDownload pages the chunk list", () => {
  let h: RpcHarness;

  /** Commits a blob of `count` chunks of 256 KiB, stored raw, straight into the database: 9,000 chunks need no 2 GiB of bytes. */
  async function commitBlob(path: string, count: number, hashKind: HashKind): Promise<void> {
    const ns = h.caller.namespaceId;
    await h.deps.db.transaction().execute(async (tx) => {
      const blob = await tx
        .insertInto("blobs")
        .values({ namespace_id: ns, content_hash: Buffer.alloc(32, count % 251), size: count * 256 * KiB, object_key: `ns/${ns}/${path}`, chunks: null, hash_kind: hashKind, stored_size: count * 256 * KiB, chunk_count: count })
        .returning("id")
        .executeTakeFirstOrThrow();
      await sql`
        insert into blob_chunks (blob_id, seq, namespace_id, hash, size, plain_offset, stored_offset, stored_size, codec)
        select ${blob.id}, i, ${ns}, sha256(int4send(i)), ${256 * KiB}, i::bigint * ${256 * KiB}, i::bigint * ${256 * KiB}, ${256 * KiB}, 1
        from generate_series(0, ${count - 1}) i
      `.execute(tx);
      await commitVersion(tx, { namespaceId: ns, path, authorId: h.caller.user.id, blob: { id: blob.id, size: count * 256 * KiB, contentHash: Buffer.alloc(32, count % 251), hashKind }, baseRevision: null });
    });
  }

  beforeAll(async () => {
    h = await startRpcHarness();
    await commitBlob("many.bin", 9000, 1);
    await commitBlob("old.bin", 3, 2);
  });
  afterAll(() => h?.close());

  it("gives at most 8,192 chunks a page, from first_chunk, with the count and stored size each time", async () => {
    const first = await h.files.getDownload({ path: "many.bin" });
    expect(first).toMatchObject({ chunkCount: 9000n, storedSize: BigInt(9000 * 256 * KiB) });
    expect(first.chunks).toHaveLength(8192);
    const second = await h.files.getDownload({ path: "many.bin", firstChunk: 8192n });
    expect(second.chunks).toHaveLength(808);
    const all = [...first.chunks, ...second.chunks];
    all.forEach((c, i) => expect(c.offset, `chunk ${i}`).toBe(BigInt(i * 256 * KiB)));
    expect(second.url).not.toBe("");
    expect((await h.files.getDownload({ path: "many.bin", firstChunk: 9000n })).chunks).toEqual([]);
    expect((await h.files.getDownload({ path: "many.bin", firstChunk: 1n << 40n })).chunks).toEqual([]);
  });

  it("refuses a negative first_chunk", async () => {
    const err = await h.files.getDownload({ path: "many.bin", firstChunk: -1n }).catch((e: unknown) => e);
    expect(err instanceof ConnectError && err.code).toBe(Code.InvalidArgument);
    expect((err as Error).message).toMatch(/first_chunk must not be negative/);
  });

  it("serves a blob stored before content-defined chunks as before, with its hash kind", async () => {
    const dl = await h.files.getDownload({ path: "old.bin" });
    expect(dl.file?.contentHashKind).toBe(ContentHashKind.CHUNK_LIST);
    expect(dl.chunks.map((c) => [c.offset, c.storedOffset, c.storedSize, c.codec])).toEqual(
      [0, 1, 2].map((i) => [BigInt(i * 256 * KiB), BigInt(i * 256 * KiB), BigInt(256 * KiB), Codec.NONE]),
    );
    const { files } = await h.files.listFiles({});
    expect(Object.fromEntries(files.map((f) => [f.path, f.contentHashKind]))).toEqual({ "many.bin": ContentHashKind.BLAKE3, "old.bin": ContentHashKind.CHUNK_LIST });
  });
});
