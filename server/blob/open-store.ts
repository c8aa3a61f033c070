import { join } from "node:path";
import type { ServerConfig } from "../config/server-options.js";
import { dataDirSecret } from "../data-dir.js";
import type { Logger } from "../log.js";
import type { BlobStore } from "./blob-store.js";
import { createBlobRoutes, type BlobRouteHandler } from "./local/blob-routes.js";
import { LocalBlobStore } from "./local/local-store.js";
import { makeTreePrivate } from "./local/private-tree.js";
import { S3BlobStore } from "./s3/s3-store.js";

export interface OpenedStore {
  store: BlobStore;
  /** Routes the server must serve for the store's URLs; S3 serves its own, so none. */
  routes: BlobRouteHandler;
  /** Where the bytes are, for the start-up log. */
  describe: string;
}

/** The store the settings ask for: S3 when an endpoint is given, else local disk in the data folder. */
export async function openBlobStore(config: ServerConfig, log: Logger): Promise<OpenedStore> {
  if (config.s3) {
    const { s3 } = config;
    const store = new S3BlobStore(s3);
    await store.open({ timeoutMs: config.startupTimeoutMs });
    return { store, routes: async () => false, describe: `${s3.endpoint}/${s3.bucket}` };
  }
  const root = join(config.dataDir, "blobs");
  await makeTreePrivate(root, log);
  const store = new LocalBlobStore({ root, secret: await dataDirSecret(config.dataDir, "blob.key") });
  return { store, routes: createBlobRoutes(store, log), describe: root };
}
