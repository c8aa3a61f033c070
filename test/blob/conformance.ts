import { randomBytes } from "node:crypto";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import http from "node:http";
import https from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BlobStore, PresignedRequest } from "../../server/blob/blob-store.js";
import { BlobError, type BlobErrorCode } from "../../server/blob/errors.js";

/** What a store under test needs: the store, the origin its URLs are built on, and a way to stop it. */
export interface BlobStoreHarness {
  store: BlobStore;
  /** Passed as PresignOptions.origin; S3 stores ignore it. */
  origin: string;
  close(): Promise<void>;
}

const MiB = 1024 * 1024;
/** S3's minimum size for every part but the last, and so the chunk size of these tests. */
const CS = 5 * MiB;
const TTL = 300;

/**
 * The contract of BlobStore, run against every implementation (rclone's
 * fstests). Bytes move through the presigned URLs over real HTTP, as a client
 * would move them. Keys live under a random prefix, and what a test leaves
 * behind is deleted afterwards, so the suite can share a bucket.
 */
export function describeBlobStore(name: string, setup: () => Promise<BlobStoreHarness>): void {
  describe(`BlobStore conformance: ${name}`, { timeout: 120_000, sequential: true }, () => {
    let h: BlobStoreHarness;
    const prefix = `conformance/${randomBytes(6).toString("hex")}/`;
    const createdKeys = new Set<string>();
    const openUploads: Array<{ key: string; uploadId: string }> = [];

    beforeAll(async () => {
      h = await setup();
    }, 120_000);

    afterAll(async () => {
      if (!h) return;
      try {
        for (const u of openUploads) await h.store.abortMultipart(u.key, u.uploadId).catch(() => {});
        for (const key of createdKeys) await h.store.delete(key).catch(() => {});
      } finally {
        await h.close();
      }
    }, 120_000);

    // ---- helpers, closed over the harness ----

    function newKey(label: string): string {
      const key = `${prefix}${label}-${randomBytes(4).toString("hex")}`;
      createdKeys.add(key);
      return key;
    }

    async function create(key: string): Promise<string> {
      const uploadId = await h.store.createMultipart(key);
      expect(typeof uploadId).toBe("string");
      expect(uploadId).not.toBe("");
      openUploads.push({ key, uploadId });
      return uploadId;
    }

    async function presignPart(key: string, uploadId: string, partNumber: number, maxSize: number, expiresInSeconds = TTL) {
      return h.store.presignPart({ key, uploadId, partNumber, maxSize, expiresInSeconds, origin: h.origin });
    }

    /** PUTs one part through its presigned URL and returns the ETag the response carried, unquoted. */
    async function putPart(key: string, uploadId: string, partNumber: number, data: Buffer): Promise<string> {
      const res = await send(await presignPart(key, uploadId, partNumber, data.length), "PUT", data);
      expect(res.status, res.body.toString()).toBe(200);
      expect(res.headers.etag).toBeTruthy();
      return unquote(String(res.headers.etag));
    }

    async function getObject(key: string, headers: Record<string, string> = {}): Promise<HttpResponse> {
      const presigned = await h.store.presignGet({ key, expiresInSeconds: TTL, origin: h.origin });
      return send({ url: presigned.url, headers: { ...presigned.headers, ...headers } }, "GET");
    }

    /** Uploads `parts` as one object, checking the store's part listing on the way. */
    async function uploadObject(key: string, parts: Buffer[]): Promise<void> {
      const uploadId = await create(key);
      const etags: string[] = [];
      for (const [i, data] of parts.entries()) etags.push(await putPart(key, uploadId, i + 1, data));
      const listed = await h.store.listParts(key, uploadId);
      expect(listed).toEqual(parts.map((data, i) => ({ partNumber: i + 1, size: data.length, etag: etags[i] })));
      await h.store.completeMultipart(key, uploadId, listed);
    }

    // ---- the contract ----

    describe("round trip at chunk boundaries (FsPutChunked)", () => {
      const cases: Array<[string, number[]]> = [
        ["one part of cs-1 bytes", [CS - 1]],
        ["one part of exactly cs bytes", [CS]],
        ["2·cs+1 bytes as three parts", [CS, CS, 1]],
      ];
      it.each(cases)("%s", async (_label, sizes) => {
        const key = newKey("roundtrip");
        const parts = sizes.map((n) => randomBytes(n));
        const whole = Buffer.concat(parts);
        await uploadObject(key, parts);

        expect(await h.store.stat(key)).toEqual({ size: whole.length });
        const res = await getObject(key);
        expect(res.status).toBe(200);
        expect(Number(res.headers["content-length"])).toBe(whole.length);
        expect(res.body.equals(whole)).toBe(true);
      });
    });

    describe("whole-object PUT (presignPut)", () => {
      async function putWhole(key: string, data: Buffer, size = data.length): Promise<HttpResponse> {
        const presigned = await h.store.presignPut({ key, size, expiresInSeconds: TTL, origin: h.origin });
        return send(presigned, "PUT", data);
      }

      it.each([0, 1, 4096, CS + 1])("round trips %d bytes: stat, GET and ranges see the object", async (n) => {
        const key = newKey("whole");
        const data = randomBytes(n);
        const res = await putWhole(key, data);
        expect(res.status, res.body.toString()).toBe(200);
        expect(await h.store.stat(key)).toEqual({ size: n });
        const got = await getObject(key);
        expect(got.status).toBe(200);
        expect(got.body.equals(data)).toBe(true);
        if (n > 10) {
          const part = await getObject(key, { Range: "bytes=3-9" });
          expect(part.status).toBe(206);
          expect(part.body.equals(data.subarray(3, 10))).toBe(true);
        }
      });

      it("refuses a second PUT when features.putCreateOnly, else replaces; and deletes", async () => {
        const key = newKey("wholeagain");
        const first = randomBytes(100);
        expect((await putWhole(key, first)).status).toBe(200);
        const second = randomBytes(300);
        expect((await putWhole(key, second)).status).toBe(h.store.features.putCreateOnly ? 412 : 200);
        expect((await getObject(key)).body.equals(h.store.features.putCreateOnly ? first : second)).toBe(true);
        await h.store.delete(key);
        await expectBlobError(h.store.stat(key), "not_found");
        await h.store.delete(key);
      });

      it("copies ranges out of an object PUT whole, when features.partCopy", async () => {
        if (!h.store.features.partCopy) return;
        const source = newKey("wholesource");
        const data = randomBytes(2000);
        expect((await putWhole(source, data)).status).toBe(200);
        const key = newKey("wholecopy");
        const uploadId = await create(key);
        await h.store.copyPart({ key, uploadId, partNumber: 1, sourceKey: source, start: 100, end: 900 });
        await h.store.completeMultipart(key, uploadId, await h.store.listParts(key, uploadId));
        expect((await getObject(key)).body.equals(data.subarray(100, 900))).toBe(true);
      });

      it("refuses a PUT URL used for GET, and a GET URL used to PUT", async () => {
        const key = newKey("wholemethod");
        const presigned = await h.store.presignPut({ key, size: 10, expiresInSeconds: TTL, origin: h.origin });
        expect((await send(presigned, "GET")).status).toBe(403);
        const get = await h.store.presignGet({ key, expiresInSeconds: TTL, origin: h.origin });
        expect((await send(get, "PUT", randomBytes(10))).status).toBe(403);
        await expectBlobError(h.store.stat(key), "not_found");
      });
    });

    it("serves ranges: across a part boundary, open-ended, suffix, clamped, unsatisfiable", async () => {
      const key = newKey("ranges");
      const parts = [randomBytes(CS), randomBytes(1000)];
      const whole = Buffer.concat(parts);
      const size = whole.length;
      await uploadObject(key, parts);

      const expectRange = async (range: string, start: number, endInclusive: number) => {
        const res = await getObject(key, { Range: range });
        expect(res.status, range).toBe(206);
        expect(res.headers["content-range"], range).toBe(`bytes ${start}-${endInclusive}/${size}`);
        expect(res.body.equals(whole.subarray(start, endInclusive + 1)), range).toBe(true);
      };
      await expectRange(`bytes=${CS - 10}-${CS + 9}`, CS - 10, CS + 9);
      await expectRange("bytes=0-0", 0, 0);
      await expectRange(`bytes=${CS + 500}-`, CS + 500, size - 1);
      await expectRange("bytes=-7", size - 7, size - 1);
      await expectRange(`bytes=${size - 5}-${size + 100}`, size - 5, size - 1);

      const unsatisfiable = await getObject(key, { Range: `bytes=${size}-` });
      expect(unsatisfiable.status).toBe(416);
    });

    it("takes a part shorter than the size its URL allows, and lists it at its own length", async () => {
      const key = newKey("shorter");
      const uploadId = await create(key);
      const data = randomBytes(700);
      const res = await send(await presignPart(key, uploadId, 1, 1000), "PUT", data);
      expect(res.status, res.body.toString()).toBe(200);
      const etag = unquote(String(res.headers.etag));
      expect(await h.store.listParts(key, uploadId)).toEqual([{ partNumber: 1, size: 700, etag }]);
      await h.store.completeMultipart(key, uploadId, [{ partNumber: 1, etag }]);
      expect((await getObject(key)).body.equals(data)).toBe(true);
    });

    it("replaces a part that is uploaded again", async () => {
      const key = newKey("reupload");
      const uploadId = await create(key);
      await putPart(key, uploadId, 1, randomBytes(1000));
      const second = randomBytes(1500);
      const etag = await putPart(key, uploadId, 1, second);

      const listed = await h.store.listParts(key, uploadId);
      expect(listed).toEqual([{ partNumber: 1, size: 1500, etag }]);
      await h.store.completeMultipart(key, uploadId, listed);
      expect((await getObject(key)).body.equals(second)).toBe(true);
    });

    it("refuses to complete when a part other than the last is under 5 MiB", async () => {
      const key = newKey("toosmall");
      const uploadId = await create(key);
      await putPart(key, uploadId, 1, randomBytes(1000));
      await putPart(key, uploadId, 2, randomBytes(1000));
      await expectBlobError(h.store.completeMultipart(key, uploadId, await h.store.listParts(key, uploadId)), "invalid");
      await expectBlobError(h.store.stat(key), "not_found");
    });

    it("refuses to complete with a part that was never stored", async () => {
      const key = newKey("unknownpart");
      const uploadId = await create(key);
      const etag = await putPart(key, uploadId, 1, randomBytes(1000));
      await expectBlobError(h.store.completeMultipart(key, uploadId, [{ partNumber: 2, etag }]), "invalid");
      await expectBlobError(h.store.stat(key), "not_found");
    });

    it("completes idempotently: a second call succeeds", async () => {
      const key = newKey("idempotent");
      const data = randomBytes(2000);
      const uploadId = await create(key);
      await putPart(key, uploadId, 1, data);
      const parts = await h.store.listParts(key, uploadId);
      await h.store.completeMultipart(key, uploadId, parts);
      await h.store.completeMultipart(key, uploadId, parts);
      expect(await h.store.stat(key)).toEqual({ size: data.length });
      expect((await getObject(key)).body.equals(data)).toBe(true);
    });

    it("aborts: the upload is gone, and aborting again succeeds", async () => {
      const key = newKey("abort");
      const uploadId = await create(key);
      await putPart(key, uploadId, 1, randomBytes(1000));
      await h.store.abortMultipart(key, uploadId);
      await expectBlobError(h.store.listParts(key, uploadId), "not_found");
      await h.store.abortMultipart(key, uploadId);
      await expectBlobError(h.store.stat(key), "not_found");
    });

    it("refuses to complete an aborted upload with not_found (RGW answers 500 there)", async () => {
      const key = newKey("abortedcomplete");
      const uploadId = await create(key);
      const etag = await putPart(key, uploadId, 1, randomBytes(1000));
      await h.store.abortMultipart(key, uploadId);
      await expectBlobError(h.store.completeMultipart(key, uploadId, [{ partNumber: 1, etag }]), "not_found");
      await expectBlobError(h.store.stat(key), "not_found");
    });

    it("does not list an upload under another key", async () => {
      const key = newKey("otherkey");
      const uploadId = await create(key);
      await expectBlobError(h.store.listParts(newKey("otherkey"), uploadId), "not_found");
    });

    it("lists incomplete uploads by prefix until they are completed or aborted", async () => {
      const dir = `${prefix}incomplete-${randomBytes(4).toString("hex")}/`;
      const keyA = `${dir}a`;
      const keyB = `${dir}b`;
      createdKeys.add(keyA).add(keyB);
      const idA = await create(keyA);
      const idB = await create(keyB);

      const listed = await collect(h.store.listIncompleteUploads(dir));
      expect(listed.map((u) => [u.key, u.uploadId]).sort()).toEqual([[keyA, idA], [keyB, idB]].sort());
      for (const u of listed) {
        expect(u.initiated).toBeInstanceOf(Date);
        expect(Number.isNaN(u.initiated.getTime())).toBe(false);
      }
      expect(await collect(h.store.listIncompleteUploads(`${dir}zzz`))).toEqual([]);

      await putPart(keyA, idA, 1, randomBytes(100));
      await h.store.completeMultipart(keyA, idA, await h.store.listParts(keyA, idA));
      await h.store.abortMultipart(keyB, idB);
      expect(await collect(h.store.listIncompleteUploads(dir))).toEqual([]);
    });

    it("deletes: stat and GET find nothing, and deleting again succeeds", async () => {
      const key = newKey("delete");
      await uploadObject(key, [randomBytes(3000)]);
      await h.store.delete(key);
      await expectBlobError(h.store.stat(key), "not_found");
      expect((await getObject(key)).status).toBe(404);
      await h.store.delete(key);
      await expectBlobError(h.store.stat(newKey("never")), "not_found");
    });

    it("refuses expired presigned URLs with 403", async () => {
      const key = newKey("expired");
      const original = randomBytes(1000);
      await uploadObject(key, [original]);
      const uploadId = await create(key);
      const put = await presignPart(key, uploadId, 1, 500, 1);
      const get = await h.store.presignGet({ key, expiresInSeconds: 1, origin: h.origin });

      await sleep(2100);
      expect((await send(put, "PUT", randomBytes(500))).status).toBe(403);
      expect((await send(get, "GET")).status).toBe(403);
      expect(await h.store.listParts(key, uploadId)).toEqual([]);
    });

    it("refuses a presigned URL used with another method with 403", async () => {
      const key = newKey("method");
      const original = randomBytes(1000);
      await uploadObject(key, [original]);
      const uploadId = await create(key);

      const put = await presignPart(key, uploadId, 1, 1000);
      expect((await send(put, "GET")).status).toBe(403);
      const get = await h.store.presignGet({ key, expiresInSeconds: TTL, origin: h.origin });
      expect((await send(get, "PUT", randomBytes(1000))).status).toBe(403);

      expect(await h.store.listParts(key, uploadId)).toEqual([]);
      expect((await getObject(key)).body.equals(original)).toBe(true);
    });

    it("answers part PUTs with the BLAKE3 of the bytes, when features.etagIsBlake3", async () => {
      const key = newKey("etag");
      const uploadId = await create(key);
      const data = randomBytes(1000);
      const etag = await putPart(key, uploadId, 1, data);
      const hasher = new Blake3Hasher();
      hasher.update(data);
      // Clients check what they sent against such an ETag, so a store must not claim it lightly.
      expect(etag === hasher.digest("hex")).toBe(h.store.features.etagIsBlake3);
    });

    it("copies byte ranges of an object into parts, when features.partCopy", async () => {
      const key = newKey("copy");
      const uploadId = await create(key);
      const copy = (sourceKey: string, partNumber: number, start: number, end: number) =>
        h.store.copyPart({ key, uploadId, partNumber, sourceKey, start, end });

      if (!h.store.features.partCopy) {
        await expectBlobError(copy(newKey("source"), 1, 0, 1), "permanent");
        return;
      }
      const source = newKey("source");
      const whole = Buffer.concat([randomBytes(CS), randomBytes(1000)]);
      await uploadObject(source, [whole.subarray(0, CS), whole.subarray(CS)]);

      const first = await copy(source, 1, 0, CS);
      const second = await copy(source, 2, CS - 100, CS + 500);
      expect([first.size, second.size]).toEqual([CS, 600]);
      const listed = await h.store.listParts(key, uploadId);
      expect(listed).toEqual([first, second]);

      await h.store.completeMultipart(key, uploadId, listed);
      const res = await getObject(key);
      expect(res.body.equals(Buffer.concat([whole.subarray(0, CS), whole.subarray(CS - 100, CS + 500)]))).toBe(true);
    });
  });
}

// ---- HTTP, with node:http so nothing between us and the wire is hidden ----

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface HttpRequestOptions {
  method: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** Send the body chunked, without Content-Length. */
  chunked?: boolean;
}

/**
 * One request, with the whole response read. A server may answer before it
 * has read the body and then close; the answer still counts, and the error
 * from writing the rest of the body is ignored.
 */
export function httpRequest(url: string, opts: HttpRequestOptions): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.chunked) headers["transfer-encoding"] = "chunked";
    else if (opts.body && !Object.keys(headers).some((h) => h.toLowerCase() === "content-length")) {
      headers["content-length"] = String(opts.body.length);
    }
    let answered = false;
    const req = (target.protocol === "https:" ? https : http).request(target, { method: opts.method, headers }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", (err) => {
      if (!answered) reject(err);
    });
    req.end(opts.body);
  });
}

function send(presigned: PresignedRequest, method: string, body?: Buffer): Promise<HttpResponse> {
  return httpRequest(presigned.url, { method, headers: presigned.headers, ...(body ? { body } : {}) });
}

export async function expectBlobError(promise: Promise<unknown>, code: BlobErrorCode): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected BlobError ${code}`).toBeInstanceOf(BlobError);
  expect((err as BlobError).code, (err as Error).message).toBe(code);
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

function unquote(etag: string): string {
  return etag.replace(/^"|"$/g, "");
}
