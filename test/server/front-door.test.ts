import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { containErrors } from "../../server/http/contain-errors.js";
import { listen, type FrontDoor, type NodeHandler } from "../../server/http/listen.js";
import { rpcGate } from "../../server/http/rpc-gate.js";
import { createLogger } from "../../server/log.js";
import type { Caller } from "../../server/auth/users.js";

/**
 * The front door's containment and gate, in-process on a real port: a
 * handler that throws, an authentication that fails, a caller handed on.
 */

const logged: string[] = [];
const log = createLogger("debug", { write: (line: string) => (logged.push(line), true) } as unknown as NodeJS.WritableStream);
const limits = { headerTimeoutMs: 5000, idleTimeoutMs: 5000, pingTimeoutMs: 5000, requestTimeoutMs: 60_000, maxConnections: 100 };
const alice = { user: { id: 1, name: "alice" }, namespaceId: 7 } as unknown as Caller;

let front: FrontDoor;
let seen: Caller | undefined;

beforeAll(async () => {
  front = await listen({ host: "127.0.0.1", port: 0, tls: null, limits, log });
  let gate: ReturnType<typeof rpcGate>;
  const inner: NodeHandler = (req, res) => {
    if (req.url === "/throw") throw new Error("boom");
    seen = gate.callerOf(req);
    res.end("ok");
  };
  gate = rpcGate(inner, {
    prefix: "/drive.v1.",
    authenticate: async (token) => {
      if (token === "db-down") throw new Error("connection refused");
      return token === "good" ? alice : null;
    },
    log,
  });
  front.serve(containErrors(gate.handler, log));
});
afterAll(async () => {
  await front?.close(0);
});

function get(path: string, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get(`${front.url}${path}`, { headers, agent: false }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      })
      .on("error", reject);
  });
}

describe("the front door", () => {
  it("answers 500 to a handler that throws, logs it, and keeps serving", async () => {
    expect((await get("/throw")).status).toBe(500);
    expect(logged.some((l) => l.includes("request handler threw") && l.includes("boom"))).toBe(true);
    expect(await get("/other")).toMatchObject({ status: 200, body: "ok" });
  });

  it("hands the authenticated caller on, and refuses bad or missing tokens in Connect's form", async () => {
    expect((await get("/drive.v1.X/Y", { authorization: "Bearer good" })).status).toBe(200);
    expect(seen).toBe(alice);
    const bad = await get("/drive.v1.X/Y", { authorization: "Bearer nope" });
    expect(bad.status).toBe(401);
    expect(JSON.parse(bad.body)).toEqual({ code: "unauthenticated", message: "invalid token" });
    expect((await get("/drive.v1.X/Y")).status).toBe(401);
  });

  it("answers Unavailable, in gRPC-Web's form too, when authentication itself fails", async () => {
    const connect = await get("/drive.v1.X/Y", { authorization: "Bearer db-down" });
    expect(connect.status).toBe(503);
    expect(JSON.parse(connect.body).code).toBe("unavailable");
    const web = await get("/drive.v1.X/Y", { authorization: "Bearer db-down", "content-type": "application/grpc-web+proto" });
    expect(web.status).toBe(200);
    expect(web.headers["grpc-status"]).toBe("14");
  });
});
