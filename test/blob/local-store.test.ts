import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { createBlobRoutes } from "../../server/blob/local/blob-routes.js";
import { LocalBlobStore } from "../../server/blob/local/local-store.js";
import { describe, expect, it } from "vitest";
import { describeBlobStore, expectBlobError, httpRequest } from "./conformance.js";

describeBlobStore("local", async () => {
  const root = await mkdtemp(path.join(tmpdir(), "drive-blob-"));
  const store = new LocalBlobStore({ root, secret: randomBytes(32) });
  const routes = createBlobRoutes(store);
  const server = http.createServer((req, res) => {
    void routes(req, res).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    store,
    origin: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await rm(root, { recursive: true, force: true });
    },
  };
});

describe("local store: whole-object PUT", () => {
  it("refuses any length but the signed one, and stores nothing then", async () => {
    const root = await mkdtemp(path.join(tmpdir(), "drive-blob-"));
    const store = new LocalBlobStore({ root, secret: randomBytes(32) });
    const routes = createBlobRoutes(store);
    const server = http.createServer((req, res) => void routes(req, res).then((handled) => handled || res.writeHead(404).end()));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const key = "ns/1/abc";
      const signed = await store.presignPut({ key, size: 100, expiresInSeconds: 60, origin });
      expect((await httpRequest(signed.url, { method: "PUT", body: randomBytes(99) })).status).toBe(400);
      expect((await httpRequest(signed.url, { method: "PUT", body: randomBytes(101) })).status).toBe(413);
      await expectBlobError(store.stat(key), "not_found");
      const tampered = signed.url.replace("size=100", "size=101");
      expect((await httpRequest(tampered, { method: "PUT", body: randomBytes(101) })).status).toBe(403);
      expect((await httpRequest(signed.url, { method: "PUT", body: randomBytes(100) })).status).toBe(200);
      expect(await store.stat(key)).toEqual({ size: 100 });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await rm(root, { recursive: true, force: true });
    }
  });
});
