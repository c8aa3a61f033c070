import { once } from "node:events";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";

/**
 * What the proxy does with one call:
 * - pass: forward it and relay the answer;
 * - drop: read it, never forward it, and answer success with an empty
 *   message, as a middlebox that lost the request after acknowledging it
 *   would (the lost report the CLI must not take for a conflict);
 * - unavailable: answer 503 with a Connect "unavailable" error, as a load
 *   balancer with no healthy backend does.
 */
export type RpcFault = "pass" | "drop" | "unavailable";

export interface RpcFaultProxyOptions {
  /** The server's URL, http://host:port (h2c). */
  target: string;
  /** Decides each call: `rpc` is "drive.v1.UploadService/ReportParts", `n` counts that RPC's calls from 1. */
  fault: (rpc: string, n: number) => RpcFault;
}

export interface RpcFaultProxy {
  /** http://127.0.0.1:<port>, to give the CLI as --server. */
  readonly url: string;
  /** Calls seen per RPC, and what was done with them, in order. */
  readonly log: Array<{ rpc: string; fault: RpcFault }>;
  close(): Promise<void>;
}

/**
 * An HTTP/2 (h2c) reverse proxy for the control plane that can fail single
 * RPCs by name, which a TCP proxy cannot: every call shares one connection.
 * It speaks Connect unary only, the CLI's protocol; it relays no trailers,
 * so gRPC does not pass. The data plane must not go through it: in S3 mode
 * the part URLs name the store, so it does not.
 */
export async function startRpcFaultProxy(opts: RpcFaultProxyOptions): Promise<RpcFaultProxy> {
  let session: http2.ClientHttp2Session | null = null;
  const upstream = () => {
    if (!session || session.closed || session.destroyed) {
      session = http2.connect(opts.target);
      session.on("error", () => undefined); // each stream reports its own failure
    }
    return session;
  };
  const counts = new Map<string, number>();
  const log: RpcFaultProxy["log"] = [];

  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  });
  server.on("stream", (stream, headers) => {
    stream.on("error", () => undefined);
    const rpc = String(headers[":path"] ?? "").replace(/^\//, "");
    const n = (counts.get(rpc) ?? 0) + 1;
    counts.set(rpc, n);
    const fault = opts.fault(rpc, n);
    log.push({ rpc, fault });
    if (fault !== "pass") {
      stream.resume(); // read the request whole, forward none of it
      stream.once("end", () => {
        if (fault === "drop") {
          stream.respond({ ":status": 200, "content-type": "application/proto" });
          stream.end();
        } else {
          stream.respond({ ":status": 503, "content-type": "application/json" });
          stream.end(JSON.stringify({ code: "unavailable", message: "fault proxy: no backend" }));
        }
      });
      return;
    }
    const forward: http2.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(headers)) if (k !== ":scheme" && v !== undefined) forward[k] = v;
    const up = upstream().request(forward);
    up.on("error", () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    up.on("response", (res) => {
      const back: http2.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(res)) if ((k === ":status" || !k.startsWith(":")) && v !== undefined) back[k] = v;
      stream.respond(back);
      up.pipe(stream);
    });
    stream.pipe(up);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    log,
    async close() {
      (session as http2.ClientHttp2Session | null)?.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Open client sessions keep the server from closing.
        for (const s of sessions) s.destroy();
      });
    },
  };
}
