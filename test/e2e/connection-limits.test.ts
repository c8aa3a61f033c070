import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import http2 from "node:http2";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDrive } from "../support/drive-cli.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import { bearer, connectGrpc, unary, type GetDownloadMsg } from "../support/grpc-client.js";
import { healthStatus } from "../support/raw-http.js";

const MiB = 1024 * 1024;
const HEADER_TIMEOUT_MS = 4000;
const IDLE_TIMEOUT_MS = 2000;
const REQUEST_TIMEOUT_MS = 5000;
/** Generous, for a loaded machine: the point is that they close at all (before the fix they stayed open past 100 s). */
const CLOSE_BOUND_MS = HEADER_TIMEOUT_MS + 13_000;

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

/** The four kinds of connection that used to stay open forever. */
const kinds: Record<string, Buffer | null> = {
  silent: null,
  "partial preface": Buffer.from("PRI * HTTP/2.0\r\n\r\nS"),
  "idle HTTP/2 session": Buffer.concat([PREFACE, SETTINGS]),
  "partial HTTP/1 headers": Buffer.from("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "),
};

interface Held {
  kind: string;
  openedAt: number;
  /** Resolves with how long the connection lived once the server closes it. */
  closed: Promise<number>;
}

function hold(url: string, kind: string): Promise<Held> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    socket.on("error", () => {});
    socket.once("connect", () => {
      const openedAt = Date.now();
      const bytes = kinds[kind];
      if (bytes) socket.write(bytes);
      socket.resume(); // read (and drop) whatever the server says, e.g. its SETTINGS
      resolve({ kind, openedAt, closed: new Promise((done) => socket.once("close", () => done(Date.now() - openedAt))) });
    });
    socket.once("error", reject);
  });
}

describe("connection timeouts", () => {
  let server: TestServer;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "drive-conn-"));
    server = await startDriveServer({
      args: [
        ...["--header-timeout", `${HEADER_TIMEOUT_MS}ms`, "--idle-timeout", `${IDLE_TIMEOUT_MS}ms`, "--ping-timeout", "2s"],
        ...["--request-timeout", `${REQUEST_TIMEOUT_MS}ms`, "--max-connections", "1000"],
      ],
    });
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("closes 500 idle or half-open connections within the header timeout, while a real push and pull succeed", async () => {
    const names = Object.keys(kinds);
    const held = await Promise.all(Array.from({ length: 500 }, (_, i) => hold(server.url, names[i % names.length]!)));

    const data = randomBytes(12 * MiB + 7);
    await writeFile(join(dir, "a.bin"), data);
    const opts = { server: server.url, token: server.adminToken, cwd: dir };
    const push = await runDrive(["--json", "push", "--part-size", "5M", "a.bin", "limits/a.bin"], opts);
    expect(push.code, push.stderr + push.stdout).toBe(0);
    const pull = await runDrive(["--json", "pull", "limits/a.bin", "b.bin"], opts);
    expect(pull.code, pull.stderr + pull.stdout).toBe(0);
    expect((await readFile(join(dir, "b.bin"))).equals(data)).toBe(true);

    const lived = await Promise.all(
      held.map(async (h) => ({ kind: h.kind, ms: await Promise.race([h.closed, new Promise<number>((r) => setTimeout(() => r(Infinity), CLOSE_BOUND_MS + 5000))]) })),
    );
    for (const name of names) {
      const worst = Math.max(...lived.filter((l) => l.kind === name).map((l) => l.ms));
      expect(worst, `${name}: longest-lived connection`).toBeLessThan(CLOSE_BOUND_MS);
    }
    expect(await healthStatus(server.url)).toBe(200);
  });

  it("keeps an idle HTTP/2 session while a stream is open (pings decide), and closes it once there is none", async () => {
    const data = randomBytes(8 * MiB);
    await writeFile(join(dir, "big.bin"), data);
    const push = await runDrive(["push", "big.bin", "limits/big.bin"], { server: server.url, token: server.adminToken, cwd: dir });
    expect(push.code, push.stderr).toBe(0);
    const grpc = connectGrpc(server.url);
    const dl = await unary<GetDownloadMsg>(grpc.files, "GetDownload", { path: "limits/big.bin" }, bearer(server.adminToken));
    grpc.close();

    const session = http2.connect(server.url);
    session.on("error", () => {});
    let sessionClosedAt = 0;
    session.once("close", () => (sessionClosedAt = Date.now()));
    const url = new URL(dl.url);
    const req = session.request({ ":path": url.pathname + url.search });
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    await new Promise((resolve) => req.once("response", resolve));
    // Stop reading: the server's window fills and the connection goes silent, with the stream open,
    // past the idle timeout and the request timeout (the request itself has all arrived).
    req.pause();
    await new Promise((r) => setTimeout(r, Math.max(IDLE_TIMEOUT_MS * 3, REQUEST_TIMEOUT_MS + 1000)));
    expect(sessionClosedAt, "session was closed while a stream was open").toBe(0);
    req.resume();
    await new Promise((resolve) => req.once("end", resolve));
    expect(Buffer.concat(parts).equals(data)).toBe(true);

    // No stream now: after the idle timeout the server closes the session.
    const endedAt = Date.now();
    await new Promise<void>((resolve) => (sessionClosedAt ? resolve() : session.once("close", () => resolve())));
    expect(sessionClosedAt - endedAt).toBeLessThan(CLOSE_BOUND_MS);
  });

  it("cuts a request whose body stalls past the request timeout, on HTTP/1.1 and HTTP/2", async () => {
    const started = Date.now();
    // HTTP/1.1: an RPC whose body drips in a byte every 500 ms, so only the request timeout can end it.
    const { hostname, port } = new URL(server.url);
    const socket = net.connect(Number(port), hostname);
    socket.on("error", () => {});
    let answer = "";
    socket.on("data", (c) => (answer += c));
    const closed = new Promise<number>((resolve) => socket.once("close", () => resolve(Date.now() - started)));
    socket.write(`POST /drive.v1.UserService/WhoAmI HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\nauthorization: Bearer ${server.adminToken}\r\n\r\n{`);
    const drip = setInterval(() => socket.write(" "), 500);
    try {
      expect(await closed).toBeLessThan(REQUEST_TIMEOUT_MS + CLOSE_BOUND_MS);
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(drip);
    }

    // HTTP/2: the same RPC with its body dripping; the stream is cancelled, the session lives on.
    const session = http2.connect(server.url);
    session.on("error", () => {});
    const req = session.request({ ":method": "POST", ":path": "/drive.v1.UserService/WhoAmI", "content-type": "application/json", authorization: `Bearer ${server.adminToken}` });
    req.on("error", () => {});
    req.write("{");
    const drip2 = setInterval(() => req.write(" "), 500);
    const h2started = Date.now();
    try {
      const lived = await new Promise<number>((resolve) => req.once("close", () => resolve(Date.now() - h2started)));
      expect(lived).toBeLessThan(REQUEST_TIMEOUT_MS + CLOSE_BOUND_MS);
      expect(req.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    } finally {
      clearInterval(drip2);
      session.close();
    }
    expect(await healthStatus(server.url)).toBe(200);
  });
});

describe("connection timeouts over TLS", () => {
  let server: TestServer;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "drive-conn-tls-"));
    // prettier-ignore
    await promisify(execFile)("/usr/bin/openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "2", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=IP:127.0.0.1",
    ]);
    server = await startDriveServer({
      args: ["--tls-cert", join(dir, "cert.pem"), "--tls-key", join(dir, "key.pem"), "--header-timeout", `${HEADER_TIMEOUT_MS}ms`, "--idle-timeout", `${IDLE_TIMEOUT_MS}ms`],
    });
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("closes silent, mid-handshake, and head-less HTTP/1.1 and HTTP/2 connections", async () => {
    const { hostname, port } = new URL(server.url);
    const secure = (alpn: string, bytes: string | null) =>
      new Promise<{ closed: Promise<number> }>((resolve, reject) => {
        const socket = tls.connect({ host: hostname, port: Number(port), ALPNProtocols: [alpn], rejectUnauthorized: false });
        socket.on("error", () => {});
        socket.once("secureConnect", () => {
          const at = Date.now();
          if (bytes) socket.write(bytes);
          socket.resume();
          resolve({ closed: new Promise((done) => socket.once("close", () => done(Date.now() - at))) });
        });
        socket.once("error", reject);
      });
    const lived = await Promise.all([
      ...Array.from({ length: 20 }, () => hold(server.url, "silent")),
      ...Array.from({ length: 20 }, () => hold(server.url, "partial preface")), // not a TLS hello at all
      ...Array.from({ length: 20 }, () => secure("http/1.1", null)),
      ...Array.from({ length: 20 }, () => secure("http/1.1", "GET /healthz HTTP/1.1\r\nHost: x\r\n")),
      ...Array.from({ length: 20 }, () => secure("h2", null)),
      ...Array.from({ length: 20 }, () => secure("h2", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")),
    ]);
    const all = await Promise.all(lived.map((h) => Promise.race([h.closed, new Promise<number>((r) => setTimeout(() => r(Infinity), CLOSE_BOUND_MS + 5000))])));
    expect(Math.max(...all)).toBeLessThan(CLOSE_BOUND_MS);
  });
});

describe("the connection cap", () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startDriveServer({ args: ["--header-timeout", `${HEADER_TIMEOUT_MS}ms`, "--max-connections", "20"] });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("refuses connections beyond --max-connections, and serves again once they are gone", async () => {
    const held = await Promise.all(Array.from({ length: 20 }, () => hold(server.url, "silent")));
    const extra = await hold(server.url, "silent");
    // The server drops the one over the cap at once (it does not wait for a timeout).
    expect(await extra.closed).toBeLessThan(HEADER_TIMEOUT_MS);
    await Promise.all(held.map((h) => h.closed));
    expect(await healthStatus(server.url)).toBe(200);
    expect(server.logs()).toMatch(/connection cap reached|"max_connections":20/);
  });
});
