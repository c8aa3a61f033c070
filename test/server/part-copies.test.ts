import { randomBytes } from "node:crypto";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Codec, ContentHashKind } from "../../gen/drive/v1/types_pb.js";
import { PartState } from "../../gen/drive/v1/upload_pb.js";
import type { BlobStore } from "../../server/blob/blob-store.js";
import { openTestS3Store, s3Env, s3Missing, uniqueBucket } from "../support/s3-env.js";
import { startRpcHarness, type RpcHarness } from "./rpc-harness.js";
import { chunkOffsets, createRequest, get, partBytes, pushRpc, put } from "./rpc-push.js";
import { specOf } from "./upload-specs.js";

const MiB = 1024 * 1024;
const blake3 = (data: Buffer) => new Blake3Hasher().update(data).digestBuffer();

/** v1, and v2 = v1 with 1 MiB of new bytes inserted at 12 MiB: two runs of 12 MiB the namespace stores. */
const v1 = randomBytes(24 * MiB);
const inserted = randomBytes(MiB);
const v2 = Buffer.concat([v1.subarray(0, 12 * MiB), inserted, v1.subarray(12 * MiB)]);

function describeCopies(name: string, skip: string, store: () => Promise<BlobStore | undefined>) {
  describe.skipIf(skip)(`server-side part copies: ${name}`, () => {
    let h: RpcHarness;
    let copied: number[];
    beforeAll(async () => {
      const s = await store();
      h = await startRpcHarness(s ? { store: s } : {});
      // Count the store's copies, to tell what the server filled from what the client sent.
      copied = [];
      const copyPart = h.deps.store.copyPart.bind(h.deps.store);
      h.deps.store.copyPart = async (req) => {
        copied.push(req.partNumber);
        return copyPart(req);
      };
      await pushRpc(h, "doc.bin", v1);
    });
    afterAll(() => h?.close());

    it("copies the stored runs of a new version: the client sends only the parts around the new bytes", async () => {
      copied.length = 0;
      const pushed = await pushRpc(h, "doc.bin", v2);
      const copies = pushed.parts.filter((p) => p.serverCopy);
      expect(copies.length).toBeGreaterThanOrEqual(2);
      expect(pushed.sent).toEqual(pushed.parts.filter((p) => !p.serverCopy).map((p) => p.partNumber));
      const sentBytes = pushed.parts.filter((p) => !p.serverCopy).reduce((n, p) => n + Number(p.size), 0);
      // The new MiB and what the planner borrowed around it to make 5 MiB parts; never the 24 MiB stored.
      expect(sentBytes).toBeLessThanOrEqual(6 * MiB + MiB);
      expect([...new Set(copied)].sort()).toEqual(copies.map((p) => p.partNumber).sort());
      expect(pushed.file).toMatchObject({ revision: 2n, size: BigInt(v2.length), contentHashKind: ContentHashKind.BLAKE3 });
      expect(Buffer.from(pushed.file.contentHash).equals(blake3(v2))).toBe(true);

      const dl = await h.files.getDownload({ path: "doc.bin" });
      expect(dl).toMatchObject({ chunkCount: 25n, storedSize: BigInt(v2.length) });
      const offsets = chunkOffsets(specOf("x", v2).chunks);
      dl.chunks.forEach((c, i) => {
        expect(c).toMatchObject({ offset: BigInt(offsets[i]!), storedOffset: BigInt(offsets[i]!), storedSize: BigInt(MiB), codec: Codec.NONE });
        expect(Buffer.from(c.hash).equals(blake3(v2.subarray(offsets[i]!, offsets[i + 1]!)))).toBe(true);
      });
      expect((await get(dl.url)).equals(v2)).toBe(true);
      // The old version still reads as it was.
      const old = await h.files.getDownload({ path: "doc.bin", revision: 1n });
      expect((await get(old.url)).equals(v1)).toBe(true);
    });

    it("reports copied parts as stored once copied, and copies again at complete what no record vouches for", async () => {
      const v3 = Buffer.concat([v2.subarray(0, 20 * MiB), randomBytes(MiB), v2.subarray(20 * MiB)]);
      const spec = specOf("doc3.bin", v3);
      const req = createRequest(spec);
      const created = await h.uploads.createUpload(req);
      const copies = created.parts.filter((p) => p.serverCopy).map((p) => p.partNumber);
      expect(copies.length).toBeGreaterThan(0);
      expect(created.urls.map((u) => u.partNumber).some((n) => copies.includes(n))).toBe(false);
      await h.deps.copies.settle(created.uploadId);
      const resumed = await h.uploads.createUpload(req);
      for (const p of resumed.parts) expect(p.state, `part ${p.partNumber}`).toBe(p.serverCopy ? PartState.STORED : PartState.PENDING);

      // As if another instance had made the copies and never recorded them: the store holds them, no row vouches.
      await h.deps.db.deleteFrom("upload_parts").where("upload_id", "=", created.uploadId).where("by_server", "=", true).execute();
      const offsets = chunkOffsets(spec.chunks);
      const reports = [];
      for (const url of created.urls) reports.push({ partNumber: url.partNumber, etag: await put(url, partBytes(v3, offsets, created.parts[url.partNumber - 1]!)), codec: Codec.NONE });
      await h.uploads.reportParts({ uploadId: created.uploadId, parts: reports });
      copied.length = 0;
      const { file } = await h.uploads.completeUpload({ uploadId: created.uploadId });
      expect([...copied].sort()).toEqual([...copies].sort());
      expect((await get((await h.files.getDownload({ path: "doc3.bin" })).url)).equals(v3)).toBe(true);
      expect(file?.size).toBe(BigInt(v3.length));
    });

    it("refuses to send or report a part the server copies", async () => {
      const spec = specOf("doc4.bin", Buffer.concat([v1, randomBytes(MiB)]));
      const created = await h.uploads.createUpload(createRequest(spec));
      const copy = created.parts.find((p) => p.serverCopy)!;
      await expect(h.uploads.presignParts({ uploadId: created.uploadId, partNumbers: [copy.partNumber] })).rejects.toThrow(/server copies/);
      await expect(
        h.uploads.reportParts({ uploadId: created.uploadId, parts: [{ partNumber: copy.partNumber, etag: "e", codec: Codec.NONE }] }),
      ).rejects.toThrow(/server copies/);
      await h.uploads.abortUpload({ uploadId: created.uploadId });
    });

    it("copies at complete when no background copy ever ran (an instance stopping, or another instance planning)", async () => {
      await h.deps.copies.close(); // starts no background copies from here on
      copied.length = 0;
      const v5 = Buffer.concat([randomBytes(MiB), v1]);
      const pushed = await pushRpc(h, "doc5.bin", v5);
      const copies = pushed.parts.filter((p) => p.serverCopy).map((p) => p.partNumber);
      expect(copies.length).toBeGreaterThan(0);
      expect([...copied].sort()).toEqual(copies.sort());
      expect((await get((await h.files.getDownload({ path: "doc5.bin" })).url)).equals(v5)).toBe(true);
    });
  });
}

describeCopies("local", "", async () => undefined);
describeCopies("s3", s3Env ? "" : s3Missing, async () => openTestS3Store(s3Env!, uniqueBucket("copies")));
