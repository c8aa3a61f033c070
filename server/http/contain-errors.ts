import type http from "node:http";
import type http2 from "node:http2";
import type { Logger } from "../log.js";
import type { NodeHandler } from "./listen.js";

type Req = http.IncomingMessage | http2.Http2ServerRequest;

/**
 * One request must never stop the server. This runs first for every request:
 * it refuses with 400 what connect-node cannot turn into a URL (it throws
 * inside Node's 'request' event, which ends the process), keeps error events
 * of the request and response from going unhandled, and turns a synchronous
 * throw of the handler into a 500 for that request alone.
 */
export function containErrors(handler: NodeHandler, log: Logger): NodeHandler {
  return (req, res) => {
    // A peer that resets mid-request errors these streams; the handler sees it as an abort.
    req.on("error", (err) => log.debug("request stream failed", { err: err.message, url: req.url }));
    res.on("error", (err: Error) => log.debug("response stream failed", { err: err.message, url: req.url }));
    const bad = badRequest(req);
    if (bad) return answer(req, res, 400, "bad_request", bad);
    try {
      handler(req, res);
    } catch (err) {
      log.error("request handler threw", { err, method: req.method, url: req.url });
      answer(req, res, 500, "internal", "internal error");
    }
  };
}

/** What connect-node needs to build the request's URL: an authority and a path that parse. */
function badRequest(req: Req): string | null {
  // The same expression connect-node uses (node-universal-handler.js).
  const authority = "authority" in req ? req.authority : req.headers.host;
  if (!authority) return "missing Host header";
  if (!req.url?.startsWith("/")) return "request target must be a path";
  try {
    new URL(req.url, `http://${authority}`);
  } catch {
    return "invalid Host header or path";
  }
  return null;
}

/**
 * Whether Node may read and discard the unread body to keep an HTTP/1
 * connection: closing under a client still sending can cost it our answer
 * (a reset drops what it had not read). A large or unsized body costs more
 * to discard than a new connection, so that one is closed. HTTP/2 streams
 * end on their own, bounded by flow control.
 */
export function closeUnlessSmall(req: Req): Record<string, string> {
  if (req.httpVersionMajor !== 1) return {};
  const small = !req.headers["transfer-encoding"] && Number(req.headers["content-length"] ?? 0) <= DISCARD_LIMIT;
  return small ? {} : { connection: "close" };
}
const DISCARD_LIMIT = 1024 * 1024;

/** A small JSON error, or a cut stream when the answer has begun already. Never throws. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function answer(req: Req, res: any, status: number, code: string, message: string): void {
  try {
    if (res.headersSent || res.writableEnded) {
      res.destroy?.();
      return;
    }
    const body = JSON.stringify({ code, message });
    const headers: Record<string, string | number> = { "content-type": "application/json", "content-length": Buffer.byteLength(body) };
    Object.assign(headers, closeUnlessSmall(req));
    res.writeHead(status, headers);
    res.end(body);
  } catch {
    res.destroy?.();
  }
}
