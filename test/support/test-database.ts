import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalBlobStore } from "../../server/blob/local/local-store.js";
import type { Deps } from "../../server/deps.js";
import { createLogger } from "../../server/log.js";
import { openDatabase } from "../../server/metadata/database.js";
import { startEmbeddedPostgres } from "../../server/metadata/embedded-postgres.js";
import { removeDataDir } from "./drive-server.js";

export interface TestDeps extends Deps {
  dir: string;
  close(): Promise<void>;
}

/**
 * The server's dependencies in-process, on a real PostgreSQL (the embedded
 * one, in a temp folder) and a real local blob store: for tests of the
 * domain code below the RPC layer.
 */
export async function openTestDeps(settings: Partial<Deps["settings"]> = {}): Promise<TestDeps> {
  const dir = await mkdtemp(join(tmpdir(), "drive-db-"));
  const log = createLogger("warn");
  const pg = await startEmbeddedPostgres(dir, log);
  const { db, close } = await openDatabase({ url: pg.url, maxConnections: 10, log });
  return {
    dir,
    db,
    log,
    store: new LocalBlobStore({ root: join(dir, "blobs"), secret: randomBytes(32) }),
    settings: { urlTtlSeconds: 300, uploadTtlMs: 3_600_000, limits: { openUploads: 100, openUploadBytes: 64 * 2 ** 40 }, publicUrl: null, ...settings },
    async close() {
      await close();
      await pg.stop();
      await removeDataDir(dir);
    },
  };
}
