import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { FileService } from "../../gen/drive/v1/file_pb.js";
import { UploadService } from "../../gen/drive/v1/upload_pb.js";
import { UserService } from "../../gen/drive/v1/user_pb.js";
import { ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import type { Credentials } from "../config/client-config.js";
import { hasReason } from "../errors.js";
import { defaultRetry, isRetryable, withRetry, type RetryOptions } from "./retry.js";

export interface DriveClient {
  readonly server: string;
  readonly users: Client<typeof UserService>;
  readonly files: Client<typeof FileService>;
  readonly uploads: Client<typeof UploadService>;
  /** Closes the HTTP/2 connection so the process can exit. */
  close(): void;
}

/**
 * One HTTP/2 connection to the server for every service. Unary calls that
 * fail with a retryable code are retried with backoff here, once for all
 * callers; every RPC of drive is safe to repeat (see proto/).
 */
export function connectDrive(creds: Credentials, opts: { retry?: RetryOptions; timeoutMs?: number } = {}): DriveClient {
  const sessions = new Http2SessionManager(creds.server, { pingIntervalMs: 30_000, idleConnectionTimeoutMs: 60_000 });
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${creds.token}`);
    return next(req);
  };
  const retry = opts.retry ?? defaultRetry;
  // A limit the server names (ResourceExhausted, LIMIT_EXCEEDED) stays reached however often we ask.
  const worthRetry = (err: unknown) => isRetryable(err) && !hasReason(err, ErrorReason.LIMIT_EXCEEDED);
  const retrying: Interceptor = (next) => (req) =>
    req.stream ? next(req) : withRetry(() => next(req), { ...retry, signal: req.signal }, worthRetry);
  const transport = createConnectTransport({
    baseUrl: creds.server,
    httpVersion: "2",
    sessionManager: sessions,
    interceptors: [retrying, auth],
    defaultTimeoutMs: opts.timeoutMs ?? 60_000,
  });
  return {
    server: creds.server,
    users: createClient(UserService, transport),
    files: createClient(FileService, transport),
    uploads: createClient(UploadService, transport),
    close: () => sessions.abort(),
  };
}
