import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createContextValues } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { FileService } from "../gen/drive/v1/file_pb.js";
import { UploadService } from "../gen/drive/v1/upload_pb.js";
import { TreeService } from "../gen/drive/v1/tree_pb.js";
import { FeedService } from "../gen/drive/v1/feed_pb.js";
import { UserService } from "../gen/drive/v1/user_pb.js";
import { authenticate, bootstrapAdmin } from "./auth/users.js";
import { openBlobStore } from "./blob/open-store.js";
import type { ServerConfig } from "./config/server-options.js";
import { lockDataDir } from "./data-dir.js";
import type { Deps } from "./deps.js";
import { containErrors } from "./http/contain-errors.js";
import { handleHealth } from "./http/health.js";
import { listen } from "./http/listen.js";
import { rpcGate } from "./http/rpc-gate.js";
import { createLogger } from "./log.js";
import { openDatabase } from "./metadata/database.js";
import { startEmbeddedPostgres } from "./metadata/embedded-postgres.js";
import { authInterceptor } from "./rpc/auth-interceptor.js";
import { kCaller } from "./rpc/caller.js";
import { errorInterceptor } from "./rpc/error-interceptor.js";
import { fileService } from "./rpc/file-service.js";
import { parseErrorsAsInvalidArgument } from "./rpc/parse-errors.js";
import { uploadService } from "./rpc/upload-service.js";
import { treeService } from "./rpc/tree-service.js";
import { feedService } from "./rpc/feed-service.js";
import { decodeInvalidUtf8AsLoneSurrogate } from "./rpc/utf8-strings.js";
import { userService } from "./rpc/user-service.js";
import { startJournalTrim } from "./journal/trim-journal.js";
import { JournalHub } from "./notify/journal-hub.js";
import { PartCopies } from "./uploads/part-copies.js";
import { startUploadSweeper } from "./uploads/upload-sweeper.js";

export interface RunningServer {
  url: string;
  stop(): Promise<void>;
}

/**
 * Wires configuration into objects and starts serving: the one place where
 * `drive server` is assembled. Stops in reverse order of starting: stop
 * accepting and drain calls in flight, stop the sweeper, close the pool,
 * stop PostgreSQL, release the data folder.
 */
export async function startServer(config: ServerConfig, out: NodeJS.WritableStream = process.stdout): Promise<RunningServer> {
  const log = createLogger(config.logLevel);
  const stops: Array<() => Promise<void>> = [];
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      for (const s of stops.reverse()) await s().catch((err) => log.warn("shutdown step failed", { err }));
    })());
  try {
    // The port first: a taken one fails before PostgreSQL or the admin token are touched.
    const front = await listen({ host: config.host, port: config.port, tls: config.tls, limits: config.connectionLimits, log });
    stops.push(() => front.close(0));
    stops.push(await lockDataDir(config.dataDir, log));
    // The store first: a bad S3 setting fails before PostgreSQL starts.
    const { store, routes: blobRoutes, describe: blobsAt } = await openBlobStore(config, log);

    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      const embedded = await startEmbeddedPostgres(config.dataDir, log, { timeoutMs: config.startupTimeoutMs });
      stops.push(() => embedded.stop());
      databaseUrl = embedded.url;
    }
    const database = await openDatabase({ url: databaseUrl, maxConnections: 20, log, timeoutMs: config.startupTimeoutMs });
    const { db } = database;
    stops.push(() => database.close());


    const copies = new PartCopies({ db, store, log });
    stops.push(() => copies.close());
    // One LISTEN connection of its own, beside the pool.
    const hub = new JournalHub({ db, log, url: databaseUrl });
    stops.push(() => hub.close());
    const deps: Deps = {
      db,
      store,
      log,
      settings: { urlTtlSeconds: config.urlTtlSeconds, uploadTtlMs: config.uploadTtlMs, limits: config.limits, publicUrl: config.publicUrl },
      copies,
      hub,
    };

    const tokenFile = join(config.dataDir, "admin.token");
    if (await bootstrapAdmin(db, (token) => writeFile(tokenFile, token + "\n", { mode: 0o600 }))) {
      log.info("admin user created", { token_file: tokenFile });
      out.write(`admin token written to ${tokenFile}\n`);
    }

    decodeInvalidUtf8AsLoneSurrogate();
    let gate: ReturnType<typeof rpcGate> | undefined = undefined;
    const handler = connectNodeAdapter({
      // The largest legitimate message is a CreateUploadRequest; proto/drive/v1/upload.proto has the figure.
      // connect-node checks it on the wire and again after decompression (gunzip's maxOutputLength).
      readMaxBytes: config.rpcMaxBytes,
      contextValues: (req) => {
        const values = createContextValues();
        const caller = gate?.callerOf(req);
        if (caller) values.set(kCaller, caller);
        return values;
      },
      routes: (router) => {
        router.service(UserService, userService(deps));
        router.service(FileService, fileService(deps));
        router.service(UploadService, uploadService(deps));
        router.service(TreeService, treeService(deps));
        router.service(FeedService, feedService(deps));
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

    const sweeping = new AbortController();
    startUploadSweeper(deps, Math.max(1000, Math.min(config.uploadTtlMs / 2, 60_000)), sweeping.signal);
    startJournalTrim(db, log, config.journalRetentionMs, sweeping.signal);
    stops.push(async () => sweeping.abort());

    gate = rpcGate(handler, { prefix: "/drive.v1.", authenticate: (token) => authenticate(db, token), log });
    front.serve(containErrors(gate.handler, log));
    stops.push(async () => {
      await front.close(config.shutdownTimeoutMs);
      log.info("stopped accepting; calls in flight are done");
    });
    // First of all at shutdown: WatchChanges streams never end on their own, so end them (Unavailable) before the drain waits.
    stops.push(() => hub.close());

    log.info("listening", { url: front.url, store: store.kind, blobs: blobsAt, database: config.databaseUrl ? "external" : "embedded" });
    out.write(`drive server listening on ${front.url}\n`);
    return {
      url: front.url,
      async stop() {
        await stop();
        log.info("drive server stopped");
        out.write("drive server stopped\n");
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
