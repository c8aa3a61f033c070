import { randomBytes } from "node:crypto";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import { bearer, connectGrpc, grpcError, planUpload, Status, unary, type CreateUploadMsg, type DriveGrpc } from "../support/grpc-client.js";
import { alive, healthStatus, rssOf } from "../support/raw-http.js";

const MiB = 1024 * 1024;
const WHOAMI = "/drive.v1.UserService/WhoAmI";
const CREATE_UPLOAD = "/drive.v1.UploadService/CreateUpload";

let server: TestServer;
let grpc: DriveGrpc;
let baseline: number;

beforeAll(async () => {
  server = await startDriveServer();
  grpc = connectGrpc(server.url);
  // Warm the process up (one of each kind of call) before the baseline.
  await unary(grpc.users, "WhoAmI", {}, bearer(server.adminToken));
  await healthStatus(server.url);
  baseline = await rssOf(server.process.pid!);
});
afterAll(async () => {
  grpc?.close();
  await server?.stop();
});

async function expectServingWithin50MB(): Promise<void> {
  expect(alive(server.process.pid!), server.logs()).toBe(true);
  expect(await healthStatus(server.url)).toBe(200);
  const grown = (await rssOf(server.process.pid!)) - baseline;
  expect(grown, `server RSS grew by ${(grown / MiB).toFixed(1)} MiB`).toBeLessThan(50 * MiB);
}

/**
 * Sends a request head declaring `declared` body bytes and waits for the
 * server's answer before sending any of them; then pushes zeros until the
 * server closes or all are sent. Returns the answer and how much was sent.
 */
function headFirst(head: string, declared: number): Promise<{ answer: string; sent: number; closedEarly: boolean }> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let answer = "";
    let sent = 0;
    const zeros = Buffer.alloc(MiB);
    // Only a deadline against a hang: a server that waits for the body never answers.
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer before the body was sent (${answer.length} bytes so far)`));
    }, 20_000);
    const pump = () => {
      while (sent < declared && !socket.destroyed) {
        sent += MiB;
        if (!socket.write(zeros)) return socket.once("drain", pump);
      }
      if (!socket.destroyed) socket.end();
    };
    socket.on("data", (c: Buffer) => {
      const first = answer === "";
      answer += c.toString("latin1");
      if (first) {
        clearTimeout(timer);
        pump();
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ answer, sent, closedEarly: sent < declared });
    });
    socket.write(head);
  });
}

describe("an RPC without a valid token is refused before its body is read", () => {
  for (const [name, auth] of [
    ["no token", ""],
    ["a wrong token", `authorization: Bearer drv_${"A".repeat(16)}_${"A".repeat(43)}\r\n`],
  ] as const) {
    it(`answers a 300 MB Connect body with ${name} with 401 first, and closes`, async () => {
      const declared = 300 * MiB;
      const head = `POST ${WHOAMI} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${declared}\r\n${auth}\r\n`;
      const { answer, closedEarly } = await headFirst(head, declared);
      expect(answer).toMatch(/^HTTP\/1\.1 401 /);
      expect(answer).toContain('"code":"unauthenticated"');
      expect(closedEarly).toBe(true);
      await expectServingWithin50MB();
    });
  }

  it("answers gRPC over HTTP/2 trailers-only with Unauthenticated, without waiting for the body", async () => {
    const session = http2.connect(server.url);
    try {
      const req = session.request({ ":method": "POST", ":path": WHOAMI, "content-type": "application/grpc", te: "trailers" });
      req.write(Buffer.from([0, 0, 0x10, 0, 0])); // a 1 MiB message is coming (it never does)
      const headers = await new Promise<http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader>((resolve) => req.once("response", resolve));
      expect(headers[":status"]).toBe(200);
      expect(headers["grpc-status"]).toBe("16");
      expect(decodeURIComponent(String(headers["grpc-message"]))).toBe("missing bearer token");
      req.close();
    } finally {
      session.close();
    }
    const err = await grpcError(unary(grpc.users, "WhoAmI", {}, bearer("drv_bad")));
    expect(err.code).toBe(Status.UNAUTHENTICATED);
  });

  it("answers gRPC-Web and Connect streaming in their own framing", async () => {
    const web = await post(WHOAMI, { "content-type": "application/grpc-web+proto" }, Buffer.alloc(0));
    expect(web.status).toBe(200);
    expect(web.headers["grpc-status"]).toBe("16");

    const stream = await post(WHOAMI, { "content-type": "application/connect+json" }, Buffer.alloc(0));
    expect(stream.status).toBe(200);
    expect(stream.body[0]).toBe(0b10); // end-of-stream flag
    expect(JSON.parse(stream.body.subarray(5).toString())).toEqual({ error: { code: "unauthenticated", message: "missing bearer token" } });
  });
});

describe("bodies are bounded, decompressed size included", () => {
  it("refuses a 255 KB gzip body that inflates to 256 MiB with ResourceExhausted", async () => {
    const bomb = gzipSync(Buffer.alloc(256 * MiB, 0x20), { level: 9 });
    expect(bomb.length).toBeLessThan(300 * 1024);
    const reply = await post(WHOAMI, { "content-type": "application/json", "content-encoding": "gzip", authorization: `Bearer ${server.adminToken}` }, bomb);
    expect(reply.status).toBe(429);
    expect(JSON.parse(reply.body.toString()).code).toBe("resource_exhausted");
    await expectServingWithin50MB();
  });

  it("refuses the same bomb as a gzip gRPC message with RESOURCE_EXHAUSTED", async () => {
    const bomb = gzipSync(Buffer.alloc(256 * MiB, 0), { level: 9 });
    const envelope = Buffer.alloc(5);
    envelope[0] = 1; // compressed
    envelope.writeUInt32BE(bomb.length, 1);
    const session = http2.connect(server.url);
    try {
      const req = session.request({
        ":method": "POST",
        ":path": WHOAMI,
        "content-type": "application/grpc",
        "grpc-encoding": "gzip",
        te: "trailers",
        authorization: `Bearer ${server.adminToken}`,
      });
      req.on("error", () => {});
      const status = new Promise<string | undefined>((resolve) => {
        let seen: string | undefined;
        req.on("response", (h) => (seen ??= h["grpc-status"] as string | undefined));
        req.on("trailers", (t) => (seen = t["grpc-status"] as string | undefined));
        req.on("close", () => resolve(seen));
      });
      req.resume();
      req.end(Buffer.concat([envelope, bomb]));
      expect(await status).toBe(String(Status.RESOURCE_EXHAUSTED));
    } finally {
      session.close();
    }
    await expectServingWithin50MB();
  });

  it("refuses an uncompressed message over the limit, and takes the largest legitimate one", async () => {
    const auth = { authorization: `Bearer ${server.adminToken}`, "content-type": "application/json" };
    const tooBig = await postOverLimit(WHOAMI, auth, Buffer.from(JSON.stringify({ pad: "x".repeat(5 * MiB) })));
    expect(["429", "EPIPE", "ECONNRESET"]).toContain("status" in tooBig ? String(tooBig.status) : tooBig.closed);
    expect(alive(server.process.pid!), server.logs()).toBe(true);
    expect(await healthStatus(server.url)).toBe(200);

    // A full page of 8,192 chunks with base64 hashes, pretty-printed and a 4 KB path: the figure in upload.proto.
    const chunks = Array.from({ length: 8192 }, () => ({ size: 4 * MiB, hash: randomBytes(32) }));
    const path = `limits/${"p".repeat(250)}/`.repeat(15) + "max.bin";
    const body = JSON.stringify(
      {
        path,
        size: String(chunks.length * 4 * MiB),
        contentHash: randomBytes(32).toString("base64"),
        contentHashKind: "CONTENT_HASH_KIND_BLAKE3",
        chunkCount: String(chunks.length),
        chunks: chunks.map((c) => ({ size: String(c.size), hash: c.hash.toString("base64") })),
        presignWindow: 1,
      },
      null,
      2,
    );
    const reply = await post(CREATE_UPLOAD, auth, Buffer.from(body));
    expect(reply.status, reply.body.toString().slice(0, 300)).toBe(200);
    expect(JSON.parse(reply.body.toString()).uploadId).toBeTruthy();
  });
});

describe("a blob route checks its signature before it reads a byte", () => {
  it("answers 403 to a PUT with a bad signature before any of its 300 MB is sent", async () => {
    const { request } = planUpload("limits/signed.bin", randomBytes(6 * MiB));
    const created = await unary<CreateUploadMsg>(grpc.uploads, "CreateUpload", request, bearer(server.adminToken));
    const url = new URL(created.urls[0]!.url);
    url.searchParams.set("sig", url.searchParams.get("sig")!.replace(/^./, (c) => (c === "A" ? "B" : "A")));
    const declared = 300 * MiB;
    const head = `PUT ${url.pathname}${url.search} HTTP/1.1\r\nhost: x\r\ncontent-length: ${declared}\r\n\r\n`;
    const { answer, closedEarly } = await headFirst(head, declared);
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(answer).toContain("SignatureDoesNotMatch");
    expect(closedEarly).toBe(true);
    await expectServingWithin50MB();
  });
});

/**
 * A POST the server should refuse for its size: its answer's status, read
 * without waiting for a body it may cut short, or how the connection ended
 * when the server closed it before the body was all sent and no answer got
 * through (EPIPE on our write, ECONNRESET). Either is the refusal: an
 * accepted request is answered only after its whole body was read.
 */
function postOverLimit(path: string, headers: http.OutgoingHttpHeaders, body: Buffer): Promise<{ status: number } | { closed: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${server.url}${path}`, { method: "POST", headers: { ...headers, "content-length": body.length }, agent: false }, (res) => {
      resolve({ status: res.statusCode ?? 0 });
      res.on("error", () => {});
      res.resume();
    });
    // After an answer, a write cut short is the close that follows it: already settled.
    req.on("error", (err: NodeJS.ErrnoException) => (err.code === "EPIPE" || err.code === "ECONNRESET" ? resolve({ closed: err.code }) : reject(err)));
    req.end(body);
  });
}

function post(path: string, headers: http.OutgoingHttpHeaders, body: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${server.url}${path}`, { method: "POST", headers: { ...headers, "content-length": body.length }, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on("error", reject);
    req.end(body);
  });
}
