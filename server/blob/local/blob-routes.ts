import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { Readable, Writable } from "node:stream";
import { isTransientError } from "../../../shared/io/transient-errors.js";
import { BlobError } from "../errors.js";
import type { ObjectGrant, PartGrant } from "./blob-urls.js";
import { parseByteRange } from "./byte-range.js";
import { ObjectExistsError, type LocalBlobStore } from "./local-store.js";
import { BodyLengthError } from "./stage-part.js";

/**
 * The slice of a request the routes use. Both http.IncomingMessage and
 * http2.Http2ServerRequest (the compatibility API) fit it.
 */
export type BlobRequest = Readable & {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly httpVersionMajor: number;
};

/** The slice of a response the routes use: http.ServerResponse or http2.Http2ServerResponse. */
export type BlobResponse = Writable & {
  readonly headersSent: boolean;
  writeHead(statusCode: number, headers?: OutgoingHttpHeaders): unknown;
};

export interface BlobRoutesLog {
  error(message: string, details: Record<string, unknown>): void;
}

export type BlobRouteHandler = (req: BlobRequest, res: BlobResponse) => Promise<boolean>;

/**
 * A body we reject this small is read and thrown away, so the connection can
 * be reused and the client surely sees our answer. A bigger one costs more to
 * read than a new connection, so HTTP/1 closes instead.
 */
const DRAIN_LIMIT = 64 * 1024 * 1024;

/**
 * Serves the local store's presigned URLs: PUT of a part, GET of an object.
 * Resolves false, having touched nothing, when the request is not for a blob
 * route, so the caller can answer 404 itself. Never rejects.
 *
 * Errors are small JSON bodies, {"code", "message"}, with S3's codes.
 */
export function createBlobRoutes(store: LocalBlobStore, log?: BlobRoutesLog): BlobRouteHandler {
  return async (req, res) => {
    const check = store.checkUrl(req.method, req.url);
    if (check.kind === "not_blob") return false;
    // A client that goes away mid-answer must not crash the server.
    res.on("error", () => {});
    try {
      switch (check.kind) {
        case "denied":
          sendError(req, res, 403, check.code, check.message);
          return true;
        case "part":
          await putPart(store, check.grant, req, res);
          return true;
        case "put":
          await putObject(store, check.grant, req, res);
          return true;
        case "object":
          await getObject(store, check.key, req, res, log);
          return true;
      }
    } catch (err) {
      sendStoreError(req, res, err, check.kind === "part" ? "NoSuchUpload" : "NoSuchKey", log);
      return true;
    }
  };
}

async function putPart(store: LocalBlobStore, grant: PartGrant, req: BlobRequest, res: BlobResponse): Promise<void> {
  const declared = req.headers["content-length"];
  if (declared === undefined) {
    return sendError(req, res, 411, "MissingContentLength", "Content-Length is required");
  }
  if (!/^(0|[1-9][0-9]{0,15})$/.test(declared)) {
    return sendError(req, res, 400, "InvalidArgument", "Content-Length is not a byte count");
  }
  const size = Number(declared);
  if (size > grant.maxSize) {
    return sendError(req, res, 413, "EntityTooLarge", `Content-Length ${size} is over the ${grant.maxSize} bytes this URL is signed for`);
  }
  try {
    // Not destroyed when we stop early: sendError decides between draining and closing.
    const { key, uploadId, partNumber } = grant;
    const part = await store.receivePart({ key, uploadId, partNumber, size }, req.iterator({ destroyOnReturn: false }));
    res.writeHead(200, { etag: `"${part.etag}"`, "content-length": 0 });
    res.end();
  } catch (err) {
    if (!(err instanceof BodyLengthError)) throw err;
    if (err.problem === "too_long") sendError(req, res, 413, "EntityTooLarge", err.message);
    else sendError(req, res, 400, "IncompleteBody", err.message);
  }
}

/** A whole object in one PUT: Content-Length must be the signed size exactly. */
async function putObject(store: LocalBlobStore, grant: ObjectGrant, req: BlobRequest, res: BlobResponse): Promise<void> {
  const declared = req.headers["content-length"];
  if (declared === undefined) {
    return sendError(req, res, 411, "MissingContentLength", "Content-Length is required");
  }
  if (!/^(0|[1-9][0-9]{0,15})$/.test(declared)) {
    return sendError(req, res, 400, "InvalidArgument", "Content-Length is not a byte count");
  }
  if (Number(declared) !== grant.size) {
    const status = Number(declared) > grant.size ? 413 : 400;
    return sendError(req, res, status, status === 413 ? "EntityTooLarge" : "IncompleteBody", `Content-Length ${declared} is not the ${grant.size} bytes this URL is signed for`);
  }
  try {
    const { etag } = await store.receiveObject(grant, req.iterator({ destroyOnReturn: false }));
    res.writeHead(200, { etag: `"${etag}"`, "content-length": 0 });
    res.end();
  } catch (err) {
    if (err instanceof ObjectExistsError) return sendError(req, res, 412, "PreconditionFailed", err.message);
    if (!(err instanceof BodyLengthError)) throw err;
    if (err.problem === "too_long") sendError(req, res, 413, "EntityTooLarge", err.message);
    else sendError(req, res, 400, "IncompleteBody", err.message);
  }
}

async function getObject(store: LocalBlobStore, key: string, req: BlobRequest, res: BlobResponse, log?: BlobRoutesLog): Promise<void> {
  const object = await store.openObject(key);
  const range = parseByteRange(single(req.headers.range), object.size);
  if (range.kind === "unsatisfiable") {
    return sendError(req, res, 416, "InvalidRange", "The requested range is not satisfiable", {
      "content-range": `bytes */${object.size}`,
    });
  }
  const { start, end } = range.kind === "partial" ? range : { start: 0, end: object.size };
  const headers: OutgoingHttpHeaders = {
    "content-type": "application/octet-stream",
    "content-length": end - start,
    "accept-ranges": "bytes",
  };
  if (range.kind === "partial") headers["content-range"] = `bytes ${start}-${end - 1}/${object.size}`;
  res.writeHead(range.kind === "partial" ? 206 : 200, headers);
  try {
    await object.send(res, start, end);
    res.end();
  } catch (err) {
    // The status is gone already; cutting the body short tells the client.
    res.destroy();
    // A client that hung up (Ctrl-C on a pull) is no server fault; anything else is.
    if (!isTransientError(err)) log?.error("blob GET failed mid-stream", { key, err });
  }
}

function sendStoreError(req: BlobRequest, res: BlobResponse, err: unknown, notFound: string, log?: BlobRoutesLog): void {
  const code = err instanceof BlobError ? err.code : "permanent";
  switch (code) {
    case "not_found":
      return sendError(req, res, 404, notFound, (err as Error).message);
    case "invalid":
      return sendError(req, res, 400, "InvalidArgument", (err as Error).message);
    case "retryable":
      log?.error("blob route: store busy", { err });
      return sendError(req, res, 503, "ServiceUnavailable", "Please retry");
    case "permanent":
      log?.error("blob route failed", { err });
      return sendError(req, res, 500, "InternalError", "Internal error");
  }
}

function sendError(
  req: BlobRequest,
  res: BlobResponse,
  status: number,
  code: string,
  message: string,
  extra: OutgoingHttpHeaders = {},
): void {
  if (res.headersSent || res.writableEnded || res.destroyed) {
    if (!res.writableEnded) res.destroy();
    return;
  }
  const body = JSON.stringify({ code, message });
  const headers: OutgoingHttpHeaders = {
    ...extra,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  };
  if (!req.readableEnded && !req.destroyed) {
    const declared = Number(req.headers["content-length"] ?? Infinity);
    // HTTP/2 cannot say "Connection: close"; its flow control bounds the waste.
    if (req.httpVersionMajor === 1 && !(declared <= DRAIN_LIMIT)) headers.connection = "close";
    else req.resume();
  }
  res.writeHead(status, headers);
  res.end(body);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
