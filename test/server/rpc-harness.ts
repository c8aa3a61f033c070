import http from "node:http";
import type { AddressInfo } from "node:net";
import { createClient, createRouterTransport, type Client, type Interceptor } from "@connectrpc/connect";
import { FileService } from "../../gen/drive/v1/file_pb.js";
import { FeedService } from "../../gen/drive/v1/feed_pb.js";
import { UploadService } from "../../gen/drive/v1/upload_pb.js";
import { authenticate, createUser, type Caller } from "../../server/auth/users.js";
import type { BlobStore } from "../../server/blob/blob-store.js";
import { createBlobRoutes, type BlobRouteHandler } from "../../server/blob/local/blob-routes.js";
import { LocalBlobStore } from "../../server/blob/local/local-store.js";
import { kCaller } from "../../server/rpc/caller.js";
import { errorInterceptor } from "../../server/rpc/error-interceptor.js";
import { fileService } from "../../server/rpc/file-service.js";
import { feedService } from "../../server/rpc/feed-service.js";
import { uploadService } from "../../server/rpc/upload-service.js";
import type { Deps } from "../../server/deps.js";
import { openTestDeps, type TestDeps } from "../support/test-database.js";

export interface RpcHarness {
  deps: TestDeps;
  caller: Caller;
  uploads: Client<typeof UploadService>;
  files: Client<typeof FileService>;
  feed: Client<typeof FeedService>;
  close(): Promise<void>;
}

/**
 * The upload and file services in-process (connect-es's router transport,
 * no sockets for the RPCs), as one user, on a real PostgreSQL and a real
 * store: the local one, whose presigned URLs a plain HTTP server here
 * serves, or `opts.store` (S3), whose URLs go to the store itself.
 */
export async function startRpcHarness(
  opts: { store?: BlobStore; settings?: Partial<Deps["settings"]>; hub?: { maxQueuedPerStream?: number } } = {},
): Promise<RpcHarness> {
  let routes: BlobRouteHandler | undefined;
  const server = http.createServer((req, res) => {
    void (routes ? routes(req, res) : Promise.resolve(false)).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const deps = await openTestDeps({ publicUrl: origin, ...opts.settings }, { ...(opts.store ? { store: opts.store } : {}), hub: opts.hub });
  if (deps.store instanceof LocalBlobStore) routes = createBlobRoutes(deps.store);
  const caller = (await authenticate(deps.db, (await createUser(deps.db, "alice", false)).token))!;
  const asCaller: Interceptor = (next) => (req) => {
    req.contextValues.set(kCaller, caller);
    return next(req);
  };
  const transport = createRouterTransport(
    (router) => {
      router.service(UploadService, uploadService(deps));
      router.service(FileService, fileService(deps));
      router.service(FeedService, feedService(deps));
    },
    { router: { interceptors: [errorInterceptor(deps.log), asCaller] } },
  );
  return {
    deps,
    caller,
    uploads: createClient(UploadService, transport),
    files: createClient(FileService, transport),
    feed: createClient(FeedService, transport),
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await deps.close();
    },
  };
}
