import { readFile } from "node:fs/promises";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";

/** What came back on a raw connection, and whether the server closed it. */
export interface RawReply {
  text: string;
  /** The status of the first HTTP/1 response line, or 0. */
  status: number;
  closed: boolean;
}

/**
 * Writes `bytes` on a fresh TCP connection (then half-closes it unless
 * `keepOpen`), and collects what the server sends until it closes or
 * `waitMs` passes. For requests no well-behaved client library would send.
 */
export function rawExchange(url: string, bytes: Buffer | string, opts: { waitMs?: number; keepOpen?: boolean } = {}): Promise<RawReply> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    const parts: Buffer[] = [];
    let closed = false;
    const done = () => {
      clearTimeout(timer);
      const text = Buffer.concat(parts).toString("latin1");
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      socket.destroy();
      resolve({ text, status: m ? Number(m[1]) : 0, closed });
    };
    const timer = setTimeout(done, opts.waitMs ?? 5000);
    socket.on("data", (c: Buffer) => parts.push(c));
    socket.on("error", () => {});
    socket.on("close", () => {
      closed = true;
      done();
    });
    socket.write(bytes, () => {
      if (!opts.keepOpen) socket.end();
    });
  });
}

/** GET /healthz over a new HTTP/1.1 connection: the status, or 0 when nothing answered. */
export async function healthStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(`${url}/healthz`, { agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
  });
}

/** GET /healthz over HTTP/2 (prior knowledge): the status, or 0. */
export async function healthStatusH2(url: string): Promise<number> {
  return new Promise((resolve) => {
    const session = http2.connect(url);
    session.on("error", () => resolve(0));
    const req = session.request({ ":path": "/healthz" });
    req.on("response", (h) => resolve(Number(h[":status"])));
    req.on("error", () => resolve(0));
    req.on("close", () => session.close());
    req.resume();
    req.end();
  });
}

/** The resident set size of a process, in bytes (Linux). */
export async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!kb) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb[1]) * 1024;
}

/** Whether a process is still running. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
