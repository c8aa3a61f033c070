import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { FileService } from "../gen/drive/v1/file_pb.js";
import { UploadService } from "../gen/drive/v1/upload_pb.js";
import { UserService } from "../gen/drive/v1/user_pb.js";
import { bootstrapAdmin } from "./auth/users.js";
import { openBlobStore } from "./blob/open-store.js";
import type { ServerConfig } from "./config/server-options.js";
import { lockDataDir } from "./data-dir.js";
import type { Deps } from "./deps.js";
import { handleHealth } from "./http/health.js";
import { listen } from "./http/listen.js";
import { createLogger } from "./log.js";
import { openDatabase } from "./metadata/database.js";
import { startEmbeddedPostgres } from "./metadata/embedded-postgres.js";
import { authInterceptor } from "./rpc/auth-interceptor.js";
import { errorInterceptor } from "./rpc/error-interceptor.js";
import { fileService } from "./rpc/file-service.js";
import { parseErrorsAsInvalidArgument } from "./rpc/parse-errors.js";
import { uploadService } from "./rpc/upload-service.js";
import { userService } from "./rpc/user-service.js";
import { startUploadSweeper } from "./uploads/upload-sweeper.js";

export interface RunningServer {
  url: string;
  stop(): Promise<void>;
}

/**
 * Wires configuration into objects and starts serving: the one place where
 * `drive server` is assembled. Stops in reverse order of starting.
 */
export async function startServer(config: ServerConfig, out: NodeJS.WritableStream = process.stdout): Promise<RunningServer> {
  const log = createLogger(config.logLevel);
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch((err) => log.warn("shutdown step failed", { err }));
  };
  try {
    stops.push(await lockDataDir(config.dataDir));
    // The store first: a bad S3 setting fails before PostgreSQL starts.
    const { store, routes: blobRoutes, describe: blobsAt } = await openBlobStore(config, log);

    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      const embedded = await startEmbeddedPostgres(config.dataDir, log);
      stops.push(() => embedded.stop());
      databaseUrl = embedded.url;
    }
    const database = await openDatabase({ url: databaseUrl, maxConnections: 20, log });
    const { db } = database;
    stops.push(() => database.close());


    const deps: Deps = {
      db,
      store,
      log,
      settings: { urlTtlSeconds: config.urlTtlSeconds, uploadTtlMs: config.uploadTtlMs, publicUrl: config.publicUrl },
    };

    const tokenFile = join(config.dataDir, "admin.token");
    if (await bootstrapAdmin(db, (token) => writeFile(tokenFile, token + "\n", { mode: 0o600 }))) {
      log.info("admin user created", { token_file: tokenFile });
      out.write(`admin token written to ${tokenFile}\n`);
    }

    const handler = connectNodeAdapter({
      routes: (router) => {
        router.service(UserService, userService(deps));
        router.service(FileService, fileService(deps));
        router.service(UploadService, uploadService(deps));
        parseErrorsAsInvalidArgument(router);
      },
      interceptors: [errorInterceptor(log), authInterceptor(db)],
      fallback: (req, res) => {
        void (async () => {
          if ((await handleHealth(db, req, res)) || (await blobRoutes(req, res))) return;
          res.writeHead(404, { "content-type": "application/json" });
          res.end(JSON.stringify({ code: "not_found", message: "no such route" }));
        })().catch((err) => {
          log.error("http route failed", { err, url: req.url });
          if (!res.headersSent) res.writeHead(500);
          res.end();
        });
      },
    });

    const listening = await listen(handler, { host: config.host, port: config.port, tls: config.tls });
    stops.push(() => listening.close());

    const sweeping = new AbortController();
    startUploadSweeper(deps, Math.max(1000, Math.min(config.uploadTtlMs / 2, 60_000)), sweeping.signal);
    stops.push(async () => sweeping.abort());

    log.info("listening", { url: listening.url, store: store.kind, blobs: blobsAt, database: config.databaseUrl ? "external" : "embedded" });
    out.write(`drive server listening on ${listening.url}\n`);
    return { url: listening.url, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
