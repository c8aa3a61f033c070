import type http from "node:http";
import http2 from "node:http2";
import type { Caller } from "../auth/users.js";
import type { Logger } from "../log.js";
import { answer, closeUnlessSmall } from "./contain-errors.js";
import type { NodeHandler } from "./listen.js";

type Req = http.IncomingMessage | http2.Http2ServerRequest;

export interface RpcGate {
  handler: NodeHandler;
  /** The caller the gate authenticated for this request, for the RPC's context values. */
  callerOf(req: Req): Caller | undefined;
}

/**
 * Authenticates an RPC before connect-node reads a byte of its body, so an
 * unauthenticated client cannot make the server read (or inflate) anything.
 * The refusal is written in the protocol the client speaks. Paths outside
 * `prefix` (health, blob routes) pass straight through.
 */
export function rpcGate(next: NodeHandler, opts: { prefix: string; authenticate(token: string): Promise<Caller | null>; log: Logger }): RpcGate {
  const callers = new WeakMap<Req, Caller>();
  const handler: NodeHandler = (req, res) => {
    if (!req.url?.startsWith(opts.prefix)) return next(req, res);
    const header = req.headers.authorization ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) return refuse(req, res, "unauthenticated", "missing bearer token");
    opts.authenticate(match[1]!).then(
      (caller) => {
        if (!caller) return refuse(req, res, "unauthenticated", "invalid token");
        callers.set(req, caller);
        try {
          next(req, res);
        } catch (err) {
          opts.log.error("rpc handler threw", { err, url: req.url });
          answer(req, res, 500, "internal", "internal error");
        }
      },
      (err) => {
        opts.log.error("authentication failed", { err });
        refuse(req, res, "unavailable", "authentication is unavailable, retry");
      },
    );
  };
  return { handler, callerOf: (req) => callers.get(req) };
}

const grpcStatus = { unauthenticated: 16, unavailable: 14 } as const;
const httpStatus = { unauthenticated: 401, unavailable: 503 } as const;

/**
 * An error answer without reading the request: gRPC and gRPC-Web get a
 * trailers-only response (status in the headers), Connect streams an
 * end-of-stream message, Connect unary a JSON error with its HTTP status.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function refuse(req: Req, res: any, code: keyof typeof grpcStatus, message: string): void {
  try {
    const type = String(req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    const closeH1 = closeUnlessSmall(req);
    if (type.startsWith("application/grpc")) {
      const status = { "grpc-status": String(grpcStatus[code]), "grpc-message": encodeURIComponent(message) };
      const stream = (req as http2.Http2ServerRequest).stream;
      if (!type.startsWith("application/grpc-web") && stream) {
        // Trailers-only: one HEADERS frame that ends the stream.
        stream.respond({ ":status": 200, "content-type": type, ...status }, { endStream: true });
        return;
      }
      res.writeHead(200, { "content-type": type, "content-length": 0, ...status, ...closeH1 });
      res.end();
      return;
    }
    if (type.startsWith("application/connect+")) {
      const json = Buffer.from(JSON.stringify({ error: { code, message } }));
      const frame = Buffer.alloc(5 + json.length);
      frame[0] = 0b10; // end-stream flag
      frame.writeUInt32BE(json.length, 1);
      json.copy(frame, 5);
      res.writeHead(200, { "content-type": type, "content-length": frame.length, ...closeH1 });
      res.end(frame);
      return;
    }
    answer(req, res, httpStatus[code], code, message);
  } catch {
    res.destroy?.();
  }
}
