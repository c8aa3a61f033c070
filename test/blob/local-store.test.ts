import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { createBlobRoutes } from "../../server/blob/local/blob-routes.js";
import { LocalBlobStore } from "../../server/blob/local/local-store.js";
import { describeBlobStore } from "./conformance.js";

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
