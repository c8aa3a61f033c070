import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { FileService } from "../../gen/drive/v1/file_pb.js";
import { UploadService } from "../../gen/drive/v1/upload_pb.js";
import { UserService } from "../../gen/drive/v1/user_pb.js";
import { TreeService } from "../../gen/drive/v1/tree_pb.js";
import { FeedService } from "../../gen/drive/v1/feed_pb.js";
import { ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import type { Credentials } from "../config/client-config.js";
import { hasReason } from "../errors.js";
import { defaultRetry, isRetryable, withRetry, type RetryOptions } from "./retry.js";

export interface DriveClient {
  readonly server: string;
  readonly users: Client<typeof UserService>;
  readonly files: Client<typeof FileService>;
  readonly uploads: Client<typeof UploadService>;
  readonly tree: Client<typeof TreeService>;
  readonly feed: Client<typeof FeedService>;
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
  const retrying: Interceptor = (next) => (req) => {
    const call = () => next(req).catch((err: unknown) => Promise.reject(lostConnection(err, req.signal, creds.server)));
    return req.stream ? call() : withRetry(call, { ...retry, signal: req.signal }, worthRetry);
  };
  const transport = unaryDeadline(
    createConnectTransport({ baseUrl: creds.server, httpVersion: "2", sessionManager: sessions, interceptors: [retrying, auth] }),
    opts.timeoutMs ?? 60_000,
  );
  return {
    server: creds.server,
    users: createClient(UserService, transport),
    files: createClient(FileService, transport),
    uploads: createClient(UploadService, transport),
    tree: createClient(TreeService, transport),
    feed: createClient(FeedService, transport),
    close: () => sessions.abort(),
  };
}

/**
 * The default deadline for unary calls only. connect's defaultTimeoutMs
 * covers streams too, and would cut a WatchChanges that is meant to stay
 * open for days; a stream has no deadline unless its caller gives one.
 */
function unaryDeadline(inner: Transport, ms: number): Transport {
  return {
    unary: (method, signal, timeoutMs, header, input, contextValues) => inner.unary(method, signal, timeoutMs ?? ms, header, input, contextValues),
    // 0 is connect's "no deadline".
    stream: (method, signal, timeoutMs, header, input, contextValues) => inner.stream(method, signal, timeoutMs ?? 0, header, input, contextValues),
  };
}

/**
 * connect-node reports an HTTP/2 connection the server dropped (a crash, a
 * restart) as Canceled, the code of a call the caller cancelled. Unless our
 * own signal fired, it is the server going away: Unavailable, so it is
 * retried and, in the end, exits 7 rather than 130.
 */
function lostConnection(err: unknown, signal: AbortSignal, server: string): unknown {
  if (!(err instanceof ConnectError) || err.code !== Code.Canceled || signal.aborted) return err;
  return new ConnectError(`lost the connection to ${server} (${err.rawMessage})`, Code.Unavailable, undefined, undefined, err);
}
