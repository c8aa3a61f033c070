import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContentHashKind } from "../../gen/drive/v1/types_pb.js";
import { MAX_CHUNKS_PER_PAGE } from "../../shared/rules/chunking.js";
import { insertBlob } from "../../server/uploads/commit-blob.js";
import { startRpcHarness, type RpcHarness } from "./rpc-harness.js";
import { createRequest, wireChunks as wire } from "./rpc-push.js";
import { fakeSpec } from "./upload-specs.js";

const MiB = 1024 * 1024;

/**
 * A 50 GB file's chunk list (48,000 chunks of 1 MiB): declared in six
 * pages, planned, and committed as blob_chunks, first with nothing stored,
 * then as a new version of a stored one (every chunk found, the plan made of
 * copies). The times go to the log: they are the figures the README quotes.
 */
describe("a 48,000-chunk list", { timeout: 300_000 }, () => {
  let h: RpcHarness;
  beforeAll(async () => {
    h = await startRpcHarness();
  });
  afterAll(() => h?.close());

  async function declareAll(spec: ReturnType<typeof fakeSpec>) {
    const t0 = performance.now();
    const created = await h.uploads.createUpload(createRequest(spec));
    const t1 = performance.now();
    let last;
    for (let first = MAX_CHUNKS_PER_PAGE; first < spec.chunkCount; first += MAX_CHUNKS_PER_PAGE) {
      last = await h.uploads.declareChunks({ uploadId: created.uploadId, firstChunk: BigInt(first), chunks: wire(spec.chunks.slice(first, first + MAX_CHUNKS_PER_PAGE)) });
    }
    const t2 = performance.now();
    return { uploadId: created.uploadId, parts: last!.parts, createMs: t1 - t0, declareMs: t2 - t1 };
  }

  /** Commits the planned upload's blob as if every part were in (the reports written straight in), in a transaction kept. */
  async function commitBlobRows(uploadId: string): Promise<number> {
    await sql`insert into upload_parts (upload_id, part_number, etag) select upload_id, part_number, 'x' from upload_plan where upload_id = ${uploadId}`.execute(h.deps.db);
    const t0 = performance.now();
    await h.deps.db.transaction().execute(async (tx) => {
      const row = await tx.selectFrom("uploads").selectAll().where("id", "=", uploadId).executeTakeFirstOrThrow();
      await insertBlob(tx, row, row.size);
    });
    return performance.now() - t0;
  }

  it("declares, plans and commits in a few seconds, with nothing stored and with everything stored", async () => {
    const spec = fakeSpec("big/v1.bin", "big", 48_000 * MiB, MiB);
    const fresh = await declareAll(spec);
    expect(fresh.parts.reduce((n, p) => n + p.chunkCount, 0)).toBe(48_000);
    expect(fresh.parts.some((p) => p.serverCopy)).toBe(false);
    const commitMs = await commitBlobRows(fresh.uploadId);
    expect(await h.deps.db.selectFrom("blob_chunks").select(sql<number>`count(*)::int`.as("n")).executeTakeFirstOrThrow()).toEqual({ n: 48_000 });

    // The next version: one chunk changed in the middle; everything else is found in the index.
    const v2 = fakeSpec("big/v2.bin", "big-v2", 48_000 * MiB, MiB);
    v2.chunks = spec.chunks.map((c, i) => (i === 24_000 ? v2.chunks[i]! : c));
    const delta = await declareAll(v2);
    const copied = delta.parts.filter((p) => p.serverCopy);
    expect(copied.reduce((n, p) => n + p.chunkCount, 0)).toBeGreaterThan(47_000);

    const figures = {
      fresh: { create_ms: Math.round(fresh.createMs), declare_and_plan_ms: Math.round(fresh.declareMs), parts: fresh.parts.length, commit_blob_chunks_ms: Math.round(commitMs) },
      all_stored: { create_ms: Math.round(delta.createMs), declare_and_plan_ms: Math.round(delta.declareMs), parts: delta.parts.length, copy_parts: copied.length },
    };
    console.log(`48,000-chunk list: ${JSON.stringify(figures)}`);
    expect(fresh.createMs + fresh.declareMs + delta.createMs + delta.declareMs).toBeLessThan(60_000);
  });
});
