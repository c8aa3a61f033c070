import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobError } from "../../server/blob/errors.js";
import { S3BlobStore } from "../../server/blob/s3/s3-store.js";
import { DependencyUnavailableError } from "../../server/startup-error.js";

/**
 * A store that answers every request 503, as RGW does when it sheds load.
 * With its retries off, minio-js reports that without an S3 code; it must
 * still count as "the store is busy" (retryable, Unavailable), not as a
 * permanent failure that clients would see as Internal.
 */
describe("an S3 store that answers 503", () => {
  let server: http.Server;
  let endpoint: string;
  let requests = 0;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      requests++;
      req.resume();
      res.writeHead(503, { "content-type": "text/plain" }).end("busy");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const store = () =>
    new S3BlobStore({ endpoint, bucket: "busy", accessKey: "k", secretKey: "s", region: "us-east-1", pathStyle: true, sse: false });

  it("is retried, then reported as retryable", async () => {
    requests = 0;
    const err = await store().stat("ns/1/x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlobError);
    expect((err as BlobError).code).toBe("retryable");
    expect(requests).toBeGreaterThan(1);
  });

  it("stops the server at start as unavailable, naming the endpoint", async () => {
    const err = await store().open({ timeoutMs: 20_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DependencyUnavailableError);
    expect((err as Error).message).toContain(endpoint);
    expect((err as Error).message).toContain("is unavailable");
  });
});
