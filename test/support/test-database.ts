import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BlobStore } from "../../server/blob/blob-store.js";
import { LocalBlobStore } from "../../server/blob/local/local-store.js";
import type { Deps } from "../../server/deps.js";
import { createLogger } from "../../server/log.js";
import { openDatabase } from "../../server/metadata/database.js";
import { startEmbeddedPostgres } from "../../server/metadata/embedded-postgres.js";
import { JournalHub } from "../../server/notify/journal-hub.js";
import { PartCopies } from "../../server/uploads/part-copies.js";
import { removeDataDir } from "./drive-server.js";

export interface TestDeps extends Deps {
  dir: string;
  close(): Promise<void>;
}

/**
 * The server's dependencies in-process, on a real PostgreSQL (the embedded
 * one, in a temp folder) and a real blob store (the local one unless
 * `opts.store` is given): for tests of the domain code below the RPC layer.
 */
export async function openTestDeps(
  settings: Partial<Deps["settings"]> = {},
  opts: { store?: BlobStore; hub?: { maxQueuedPerStream?: number } } = {},
): Promise<TestDeps> {
  const dir = await mkdtemp(join(tmpdir(), "drive-db-"));
  const log = createLogger("warn");
  const pg = await startEmbeddedPostgres(dir, log);
  const { db, close } = await openDatabase({ url: pg.url, maxConnections: 10, log });
  const store = opts.store ?? new LocalBlobStore({ root: join(dir, "blobs"), secret: randomBytes(32) });
  const copies = new PartCopies({ db, store, log });
  const hub = new JournalHub({ db, log, url: pg.url, ...opts.hub });
  return {
    dir,
    db,
    log,
    store,
    copies,
    hub,
    settings: { urlTtlSeconds: 300, uploadTtlMs: 3_600_000, limits: { openUploads: 100, openUploadBytes: 64 * 2 ** 40 }, publicUrl: null, ...settings },
    async close() {
      await hub.close();
      await copies.close();
      await close();
      await pg.stop();
      await removeDataDir(dir);
    },
  };
}
