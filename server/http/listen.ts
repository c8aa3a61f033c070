import { readFile } from "node:fs/promises";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";

/** A request handler for both protocols, as connectNodeAdapter returns. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type NodeHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: any) => void;

export interface ListenOptions {
  host: string;
  port: number;
  tls: { certFile: string; keyFile: string } | null;
}

export interface Listening {
  /** The bound address, e.g. "127.0.0.1:7070" (the real port when 0 was asked). */
  address: string;
  url: string;
  close(): Promise<void>;
}

/**
 * One port for gRPC, gRPC-Web, Connect and the plain blob routes.
 *
 * With TLS, ALPN picks HTTP/2 or HTTP/1.1. In plaintext, Node's http2 server
 * speaks prior-knowledge h2c only, and HTTP/1.1 clients (curl, fetch, the
 * blob PUTs) would be refused; so a raw TCP listener reads the first bytes of
 * each connection and hands it to the HTTP/2 server when they are the
 * HTTP/2 preface, and to an HTTP/1.1 server otherwise. Both run one handler.
 */
export async function listen(handler: NodeHandler, opts: ListenOptions): Promise<Listening> {
  const h2Sessions = new Set<http2.ServerHttp2Session>();
  let front: net.Server;
  let closeInner: () => Promise<void>;

  if (opts.tls) {
    const [cert, key] = await Promise.all([readFile(opts.tls.certFile), readFile(opts.tls.keyFile)]);
    const server = http2.createSecureServer({ cert, key, allowHTTP1: true }, handler);
    server.on("session", (s) => trackSession(h2Sessions, s));
    front = server;
    closeInner = async () => {};
  } else {
    const h2 = http2.createServer({}, handler);
    h2.on("session", (s) => trackSession(h2Sessions, s));
    const h1 = http.createServer(handler as http.RequestListener);
    h1.keepAliveTimeout = 65_000;
    front = net.createServer({ noDelay: true }, (socket) => routeByPreface(socket, h1, h2));
    closeInner = async () => {
      h1.closeAllConnections();
      await Promise.all([closeServer(h1), closeServer(h2)]);
    };
  }

  const sockets = new Set<net.Socket>();
  front.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });

  await new Promise<void>((resolve, reject) => {
    front.once("error", reject);
    front.listen(opts.port, opts.host, () => {
      front.off("error", reject);
      resolve();
    });
  });
  const addr = front.address() as net.AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  const address = `${host}:${addr.port}`;
  return {
    address,
    url: `${opts.tls ? "https" : "http"}://${address}`,
    async close() {
      // close() waits for every connection to end; HTTP/2 sessions and idle
      // keep-alive sockets never do by themselves, so end them.
      for (const s of h2Sessions) s.close();
      const closing = Promise.all([closeServer(front), closeInner()]);
      const timer = setTimeout(() => sockets.forEach((s) => s.destroy()), 2000);
      await closing;
      clearTimeout(timer);
    },
  };
}

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n");

function routeByPreface(socket: net.Socket, h1: http.Server, h2: http2.Http2Server): void {
  let head = Buffer.alloc(0);
  const onError = () => socket.destroy();
  const onReadable = () => {
    let chunk: Buffer | null;
    while ((chunk = socket.read()) !== null) head = Buffer.concat([head, chunk]);
    const n = Math.min(head.length, PREFACE.length);
    const couldBeH2 = head.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (couldBeH2 && head.length < PREFACE.length) return; // wait for the rest of the preface
    socket.off("readable", onReadable);
    socket.off("error", onError);
    socket.unshift(head);
    (couldBeH2 ? h2 : h1).emit("connection", socket);
  };
  socket.on("readable", onReadable);
  socket.on("error", onError);
}

function trackSession(set: Set<http2.ServerHttp2Session>, session: http2.ServerHttp2Session): void {
  set.add(session);
  session.once("close", () => set.delete(session));
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
