import { once } from "node:events";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { FaultRules, HttpFaultConn, type Action } from "./http-faults.js";

/**
 * One direction of the proxy: client→server ("upstream") or server→client
 * ("downstream"). Its byte count and rate cover every connection at once,
 * so parallel part transfers share one limit, as they would share a link.
 */
export class Direction {
  /** Bytes written onward so far, over all connections. */
  bytes = 0;
  /** Bytes per second; Infinity relays as fast as the sockets go. */
  rate: number;
  #nextFree = 0;
  #held: { promise: Promise<void>; release: () => void } | null = null;
  #waiters: Array<{ bytes: number; resolve: () => void }> = [];

  constructor(rate: number) {
    this.rate = rate;
  }

  /** Resolves once `bytes` have been relayed in this direction (at once if they have). */
  reached(bytes: number): Promise<void> {
    if (this.bytes >= bytes) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ bytes, resolve }));
  }

  /** Stops relaying in this direction until resume(); nothing is dropped, only held back. */
  pause(): void {
    if (this.#held) return;
    let release!: () => void;
    const promise = new Promise<void>((r) => (release = r));
    this.#held = { promise, release };
  }

  resume(): void {
    const held = this.#held;
    this.#held = null;
    held?.release();
  }

  /** Waits until `n` more bytes may go: while paused, then for their slot at `rate`. */
  async admit(n: number): Promise<void> {
    while (this.#held) await this.#held.promise;
    if (!Number.isFinite(this.rate)) return;
    // A shared virtual clock: each chunk books the next n/rate seconds of the
    // link, so timers that fire late lose throughput but never add any.
    const now = performance.now();
    const start = Math.max(now, this.#nextFree);
    this.#nextFree = start + (n / this.rate) * 1000;
    if (start > now) await sleep(start - now);
  }

  counted(n: number): void {
    this.bytes += n;
    const due = this.#waiters.filter((w) => this.bytes >= w.bytes);
    this.#waiters = this.#waiters.filter((w) => this.bytes < w.bytes);
    for (const w of due) w.resolve();
  }
}

export interface ThrottleProxyOptions {
  /** Where to forward: the server's URL (http://host:port) or host:port. */
  target: string;
  /** Client→server bytes per second. Default: no limit. */
  upstreamRate?: number;
  /** Server→client bytes per second. Default: no limit. */
  downstreamRate?: number;
}

export interface ThrottleProxy {
  /** http://127.0.0.1:<port>, to give the CLI as --server. */
  readonly url: string;
  readonly upstream: Direction;
  readonly downstream: Direction;
  /**
   * HTTP/1.1 faults (resets, canned 5xx, truncation, stalls, flipped bytes)
   * for the requests that pass from now on; see http-faults.ts. Empty, the
   * proxy only relays.
   */
  readonly faults: FaultRules;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

/**
 * A TCP proxy in the test process, for fault injection between the CLI and
 * the server (tusd drives toxiproxy the same way). It sees bytes, not
 * requests, so the HTTP/2 control plane and the HTTP/1.1 blob transfers pass
 * alike; the server builds blob URLs from the authority the request reached
 * it on, so those come back through the proxy too.
 */
export async function startThrottleProxy(opts: ThrottleProxyOptions): Promise<ThrottleProxy> {
  const target = new URL(opts.target.includes("://") ? opts.target : `tcp://${opts.target}`);
  const upstream = new Direction(opts.upstreamRate ?? Infinity);
  const downstream = new Direction(opts.downstreamRate ?? Infinity);
  const faults = new FaultRules();
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  };

  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    const origin = net.connect({ host: target.hostname, port: Number(target.port), allowHalfOpen: true, noDelay: true });
    track(client);
    track(origin);
    // Either side failing, or closing while the other still talks, ends the
    // pair as an unreachable peer would: the survivor sees a reset.
    const kill = () => {
      client.destroy();
      origin.destroy();
    };
    client.on("error", kill);
    origin.on("error", kill);
    client.once("close", () => (origin.writableEnded ? undefined : origin.destroy()));
    origin.once("close", () => (client.writableEnded ? undefined : client.destroy()));
    const http = new HttpFaultConn(faults);
    const act = (actions: Action[], onward: net.Socket): boolean => {
      let wrote = true;
      for (const a of actions) {
        if (a.do === "forward") wrote = onward.write(a.bytes) && wrote;
        else if (a.do === "reply") client.write(a.bytes);
        else if (a.do === "reset") {
          client.resetAndDestroy();
          origin.destroy();
        } else if (a.do === "end") {
          client.end();
          origin.destroy();
        }
        // "stall": nothing now, and HttpFaultConn lets nothing through from here on.
      }
      return wrote;
    };
    relay(client, origin, upstream, (chunk) => act(http.upstream(chunk), origin));
    relay(origin, client, downstream, (chunk) => act(http.downstream(chunk), client));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    upstream,
    downstream,
    faults,
    async close() {
      upstream.resume();
      downstream.resume();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Copies src to dst one chunk at a time, each admitted by the direction's
 * limit; `write` sends it on (through the fault rules) and says whether dst
 * took it without buffering.
 */
function relay(src: net.Socket, dst: net.Socket, dir: Direction, write: (chunk: Buffer) => boolean): void {
  src.on("data", (chunk: Buffer) => {
    // Paused here, no further "data" (nor "end") comes until this chunk is out.
    src.pause();
    void (async () => {
      await dir.admit(chunk.length);
      if (dst.destroyed) return void src.destroy();
      const flushed = write(chunk);
      dir.counted(chunk.length);
      if (!flushed && !dst.destroyed) await drained(dst);
      if (!src.destroyed) src.resume();
    })();
  });
  src.on("end", () => dst.end());
}

/** Resolves on "drain", or on "close" when the socket will never drain. */
function drained(s: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      s.off("drain", done);
      s.off("close", done);
      resolve();
    };
    s.on("drain", done);
    s.on("close", done);
  });
}
