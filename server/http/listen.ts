import { readFile } from "node:fs/promises";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import type { Logger } from "../log.js";
import { watchSession } from "./watch-session.js";

/** A request handler for both protocols, as connectNodeAdapter returns. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type NodeHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: any) => void;

/** How long a connection may take, and how many there may be (see server-options.ts for each). */
export interface ConnectionLimits {
  /** TLS handshake, protocol sniff and first request head (HTTP/1 headers; HTTP/2 preface and first stream). */
  readonly headerTimeoutMs: number;
  /** No request in flight and no traffic this long: the connection is closed. */
  readonly idleTimeoutMs: number;
  /** An HTTP/2 connection silent for idleTimeoutMs with streams open is pinged; unanswered this long, it is cut. */
  readonly pingTimeoutMs: number;
  /** A request's head and body must have arrived within this. */
  readonly requestTimeoutMs: number;
  readonly maxConnections: number;
}

export interface ListenOptions {
  host: string;
  port: number;
  tls: { certFile: string; keyFile: string } | null;
  limits: ConnectionLimits;
  log: Logger;
}

export interface FrontDoor {
  /** The bound address, e.g. "127.0.0.1:7070" (the real port when 0 was asked). */
  address: string;
  url: string;
  /** Starts answering with `handler`; until then every request gets 503 "starting". */
  serve(handler: NodeHandler): void;
  /**
   * Stops accepting, lets requests in flight finish for up to graceMs, then
   * cuts whatever is left. Resolves once every connection is gone. Idempotent.
   */
  close(graceMs: number): Promise<void>;
}

/** The port could not be bound; `code` is Node's (EADDRINUSE, EACCES, EADDRNOTAVAIL). */
export class ListenError extends Error {
  override readonly name = "ListenError";
  constructor(
    readonly address: string,
    readonly code: string,
    options: { cause: unknown },
  ) {
    super(`cannot listen on ${address}: ${code === "EADDRINUSE" ? "address already in use" : code}`, options);
  }
}

/**
 * One port for gRPC, gRPC-Web, Connect and the plain blob routes.
 *
 * A front server accepts every connection: a TLS server that picks HTTP/2 or
 * HTTP/1.1 by ALPN, or in plaintext a TCP server that reads the first bytes
 * and picks HTTP/2 for its preface (Node's http2 speaks prior-knowledge h2c
 * only), HTTP/1.1 otherwise. Either way the connection then goes to the one
 * HTTP/1.1 server or the one HTTP/2 server, so both paths get the same
 * timeouts. The port is bound before the handler exists, so that start-up
 * fails on a taken port before it does any work.
 */
export async function listen(opts: ListenOptions): Promise<FrontDoor> {
  const { limits, log } = opts;
  let handler: NodeHandler = answerStarting;
  let draining = false;
  const run: NodeHandler = (req, res) => {
    if (draining && req.httpVersionMajor === 1) res.setHeader("connection", "close");
    if (limits.requestTimeoutMs > 0 && "stream" in req) limitH2Request(req, limits.requestTimeoutMs);
    handler(req, res);
  };

  const h1 = http.createServer(
    {
      headersTimeout: limits.headerTimeoutMs,
      requestTimeout: Math.max(limits.requestTimeoutMs, limits.headerTimeoutMs),
      keepAliveTimeout: limits.idleTimeoutMs,
      // Node checks the two timeouts above only this often (30 s by default).
      connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(limits.headerTimeoutMs / 4))),
    },
    run as http.RequestListener,
  );
  // Node tracks connections (for the two timeouts above, and closeIdleConnections)
  // from its 'listening' event on; this server never listens itself, its
  // connections come from the front server, so start that tracking here.
  h1.emit("listening");
  h1.on("clientError", (err: NodeJS.ErrnoException, socket: net.Socket) => {
    log.debug("bad HTTP/1 request", { err: err.message, code: err.code });
    if (socket.writable && !socket.destroyed) {
      const status =
        err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? "408 Request Timeout" : err.code === "HPE_HEADER_OVERFLOW" ? "431 Request Header Fields Too Large" : "400 Bad Request";
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    }
    socket.destroy();
  });

  const h2Sessions = new Set<http2.ServerHttp2Session>();
  // Node's default lets one connection open 2^32-1 streams at once; the CLI opens at most 64.
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: 256 } }, run);
  h2.on("session", (s: http2.ServerHttp2Session) => watchSession(s, h2Sessions, limits));
  h2.on("sessionError", (err) => log.debug("bad HTTP/2 session", { err: err.message }));

  /** Plaintext connections that have not sent enough to pick a protocol: nothing in flight to wait for. */
  const unrouted = new Set<net.Socket>();
  let front: net.Server;
  if (opts.tls) {
    const [cert, key] = await Promise.all([readFile(opts.tls.certFile), readFile(opts.tls.keyFile)]);
    const server = tls.createServer({ cert, key, ALPNProtocols: ["h2", "http/1.1"], handshakeTimeout: limits.headerTimeoutMs });
    // handshakeTimeout does not fire for a peer that never sends its hello; this does.
    const handshakes = new Map<string, NodeJS.Timeout>();
    const peer = (s: net.Socket) => `${s.remoteAddress}|${s.remotePort}`;
    server.on("connection", (raw: net.Socket) => {
      const key = peer(raw);
      handshakes.set(key, setTimeout(() => raw.destroy(), limits.headerTimeoutMs));
      raw.once("close", () => {
        clearTimeout(handshakes.get(key));
        handshakes.delete(key);
      });
    });
    server.on("secureConnection", (s: tls.TLSSocket) => {
      clearTimeout(handshakes.get(peer(s)));
      handshakes.delete(peer(s));
      (s.alpnProtocol === "h2" ? h2 : h1).emit("connection", s);
    });
    server.on("tlsClientError", (err) => log.debug("TLS handshake failed", { err: err.message }));
    front = server;
  } else {
    front = net.createServer({ noDelay: true }, (socket) => routeByPreface(socket, h1, h2, limits.headerTimeoutMs, unrouted));
  }
  front.maxConnections = limits.maxConnections;
  let quietUntil = 0;
  front.on("drop", () => {
    // One line per burst of refused connections, not one each.
    if (Date.now() < quietUntil) return;
    quietUntil = Date.now() + 10_000;
    log.warn("connection cap reached; refusing connections", { max_connections: limits.maxConnections });
  });

  const sockets = new Set<net.Socket>();
  front.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  const wanted = `${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${opts.port}`;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(new ListenError(wanted, err.code ?? "error", { cause: err }));
    front.once("error", onError);
    front.listen(opts.port, opts.host, () => {
      front.off("error", onError);
      front.on("error", (err) => log.error("listener failed", { err }));
      resolve();
    });
  });
  const addr = front.address() as net.AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  const address = `${host}:${addr.port}`;

  let closing: Promise<void> | undefined;
  return {
    address,
    url: `${opts.tls ? "https" : "http"}://${address}`,
    serve(h) {
      handler = h;
    },
    close(graceMs) {
      closing ??= (async () => {
        draining = true;
        const closed = new Promise<void>((resolve) => front.close(() => resolve()));
        // GOAWAY: streams in flight finish, no new ones start.
        for (const s of h2Sessions) s.close();
        for (const s of unrouted) s.destroy();
        // A keep-alive socket goes idle between requests; close each as it does.
        h1.closeIdleConnections();
        const sweep = setInterval(() => h1.closeIdleConnections(), 50);
        const cut = setTimeout(() => {
          for (const s of h2Sessions) s.destroy();
          for (const s of sockets) s.destroy();
          h1.closeAllConnections();
        }, graceMs);
        await closed;
        h1.close(() => {}); // stops Node's connection checks; it has no socket of its own
        clearInterval(sweep);
        clearTimeout(cut);
      })();
      return closing;
    },
  };
}

/** Until serve(): the port is bound early so a taken one fails fast; callers may retry. */
const answerStarting: NodeHandler = (req, res) => {
  const body = JSON.stringify({ code: "unavailable", message: "server is starting" });
  const headers: Record<string, string | number> = { "content-type": "application/json", "retry-after": 1, "content-length": Buffer.byteLength(body) };
  if (req.httpVersionMajor === 1) headers.connection = "close";
  res.writeHead(503, headers);
  res.end(body);
};

/**
 * Node's requestTimeout covers HTTP/1 only. On HTTP/2 a stream whose peer is
 * still sending its request after `ms` is cancelled; one that has sent it all
 * (a long answer, a server stream) is left alone.
 */
function limitH2Request(req: http2.Http2ServerRequest, ms: number): void {
  const stream = req.stream;
  const timer = setTimeout(() => {
    if (stream.state?.state === http2.constants.NGHTTP2_STREAM_STATE_OPEN) stream.close(http2.constants.NGHTTP2_CANCEL);
  }, ms);
  timer.unref();
  stream.once("close", () => clearTimeout(timer));
}

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n");

function routeByPreface(socket: net.Socket, h1: http.Server, h2: http2.Http2Server, headerTimeoutMs: number, unrouted: Set<net.Socket>): void {
  let head = Buffer.alloc(0);
  unrouted.add(socket);
  // A silent connection, or one stuck inside the preface, is closed.
  const timer = setTimeout(() => socket.destroy(), headerTimeoutMs);
  const onError = () => socket.destroy();
  const onClose = () => {
    clearTimeout(timer);
    unrouted.delete(socket);
  };
  const onReadable = () => {
    let chunk: Buffer | null;
    while ((chunk = socket.read()) !== null) head = Buffer.concat([head, chunk]);
    const n = Math.min(head.length, PREFACE.length);
    const couldBeH2 = head.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (couldBeH2 && head.length < PREFACE.length) return; // wait for the rest of the preface
    onClose();
    socket.off("readable", onReadable);
    socket.off("error", onError);
    socket.off("close", onClose);
    socket.unshift(head);
    (couldBeH2 ? h2 : h1).emit("connection", socket);
  };
  socket.on("readable", onReadable);
  socket.on("error", onError);
  socket.on("close", onClose);
}
