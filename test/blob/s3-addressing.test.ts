import { randomBytes } from "node:crypto";
import http from "node:http";
import type { LookupFunction } from "node:net";
import { describe, expect, it } from "vitest";
import { BlobError } from "../../server/blob/errors.js";
import { S3BlobStore, type S3StoreOptions } from "../../server/blob/s3/s3-store.js";
import { s3Env, s3Missing, uniqueBucket, type S3TestEnv } from "../support/s3-env.js";

/** Every name resolves to the engine's loopback address, so BUCKET.s3.drive.test reaches RGW with no DNS. */
const toLoopback: LookupFunction = (_host, opts, cb) => {
  if (opts.all) cb(null, [{ address: "127.0.0.1", family: 4 }]);
  else cb(null, "127.0.0.1", 4);
};

/** One object through the store: multipart upload of two parts, then a ranged GET. */
type Send = (url: string, opts: { method: string; headers?: Record<string, string>; body?: Buffer }) => Promise<http.IncomingMessage & { body: Buffer }>;

async function roundTrip(store: S3BlobStore, send: Send) {
  const key = `addressing/${randomBytes(4).toString("hex")}`;
  const parts = [randomBytes(5 * 1024 * 1024), randomBytes(1000)];
  const uploadId = await store.createMultipart(key);
  const urls: string[] = [];
  for (const [i, data] of parts.entries()) {
    const put = await store.presignPart({ key, uploadId, partNumber: i + 1, maxSize: data.length, expiresInSeconds: 60, origin: "" });
    urls.push(put.url);
    const res = await send(put.url, { method: "PUT", body: data });
    expect(res.statusCode, res.body.toString()).toBe(200);
  }
  await store.completeMultipart(key, uploadId, await store.listParts(key, uploadId));
  const presigned = await store.presignGet({ key, expiresInSeconds: 60, origin: "" });
  urls.push(presigned.url);
  const whole = Buffer.concat(parts);
  const res = await send(presigned.url, { method: "GET", headers: { range: "bytes=5242000-5243000" } });
  expect(res.statusCode).toBe(206);
  expect(res.body.equals(whole.subarray(5242000, 5243001))).toBe(true);
  return { urls, headers: res.headers };
}

/** A request through an agent that resolves every name to loopback. */
function requestVia(agent: http.Agent): Send {
  return (url, { method, headers = {}, body }) =>
    new Promise((resolve, reject) => {
      if (body) headers = { ...headers, "content-length": String(body.length) };
      const req = http.request(url, { method, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve(Object.assign(res, { body: Buffer.concat(chunks) })));
      });
      req.on("error", reject);
      req.end(body);
    });
}

function storeOn(env: S3TestEnv, over: Partial<S3StoreOptions>): S3BlobStore {
  return new S3BlobStore({ ...env, bucket: uniqueBucket("addressing"), pathStyle: true, sse: false, publicEndpoint: null, ...over });
}

describe.skipIf(!s3Env)(`S3 store addressing and encryption${s3Env ? "" : ` — ${s3Missing}`}`, () => {
  const env = s3Env as S3TestEnv;

  it("path style puts the bucket in the path", async () => {
    const bucket = uniqueBucket("path");
    const store = storeOn(env, { pathStyle: true, bucket });
    await store.open();
    const { urls } = await roundTrip(store, requestVia(new http.Agent()));
    const endpoint = new URL(env.endpoint);
    for (const url of urls.map((u) => new URL(u))) {
      expect(url.host).toBe(endpoint.host);
      expect(url.pathname.startsWith(`/${bucket}/addressing/`)).toBe(true);
    }
  });

  it.skipIf(!s3Env?.virtualHost)("virtual-host style puts the bucket in the host name", async () => {
    const agent = new http.Agent({ keepAlive: true, lookup: toLoopback });
    const port = new URL(env.endpoint).port;
    const bucket = uniqueBucket("vhost");
    const store = storeOn(env, { endpoint: `http://${env.virtualHost}:${port}`, pathStyle: false, bucket, agent });
    try {
      await store.open();
      const { urls } = await roundTrip(store, requestVia(agent));
      for (const url of urls.map((u) => new URL(u))) {
        expect(url.host).toBe(`${bucket}.${env.virtualHost}:${port}`);
        expect(url.pathname.startsWith("/addressing/")).toBe(true);
      }
    } finally {
      agent.destroy();
    }
  });

  it("with SSE-S3 asked for, opens only on a store that reports objects encrypted", async () => {
    const store = storeOn(env, { sse: true });
    const opened = await store.open().then(
      () => null,
      (err: unknown) => err as BlobError,
    );
    if (opened === null) {
      // A store that applies SSE-S3 (AWS, MinIO): what it stores says so.
      const { headers } = await roundTrip(store, requestVia(new http.Agent()));
      expect(headers["x-amz-server-side-encryption"]).toBe("AES256");
    } else {
      // Ceph RGW 16 takes the header and ignores it: refusing to start beats a setting that does nothing.
      expect(opened).toBeInstanceOf(BlobError);
      expect(opened.code).toBe("permanent");
      expect(opened.message).toMatch(/--s3-sse AES256: .*(refused|does not report the object as encrypted)/);
    }
  });
});
