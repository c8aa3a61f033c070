import http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import { alive, healthStatus, healthStatusH2, rawExchange } from "../support/raw-http.js";

/**
 * No request may stop the server. Each case sends something no library would,
 * over a raw socket or node:http2, then checks that the same process still
 * answers /healthz on both protocols.
 */

let server: TestServer;
const WHOAMI = "/drive.v1.UserService/WhoAmI";

beforeAll(async () => {
  server = await startDriveServer();
});
afterAll(async () => {
  await server?.stop();
});

async function expectServing(): Promise<void> {
  expect(alive(server.process.pid!), server.logs()).toBe(true);
  expect(await healthStatus(server.url), server.logs()).toBe(200);
  expect(await healthStatusH2(server.url), server.logs()).toBe(200);
}

const http1 = (lines: string[], body = "") => lines.join("\r\n") + "\r\n\r\n" + body;

describe("malformed HTTP/1 requests", () => {
  it("answers 400 to an RPC over HTTP/1.0 with no Host header (connect-node threw on it)", async () => {
    const reply = await rawExchange(server.url, http1([`POST ${WHOAMI} HTTP/1.0`, "content-type: application/json", "content-length: 2"], "{}"));
    expect(reply.status).toBe(400);
    await expectServing();
  });

  it("answers 400 to Host: a b (connect-node threw Invalid URL)", async () => {
    const reply = await rawExchange(server.url, http1([`POST ${WHOAMI} HTTP/1.1`, "Host: a b", "content-type: application/json", "content-length: 2"], "{}"));
    expect(reply.status).toBe(400);
    await expectServing();
  });

  const cases: Array<[string, string]> = [
    ["no Host on HTTP/1.1", http1([`POST ${WHOAMI} HTTP/1.1`, "content-type: application/json", "content-length: 2"], "{}")],
    ["Host with a path in it", http1([`POST ${WHOAMI} HTTP/1.1`, "Host: a/b?c#d", "content-length: 0"])],
    ["Host of only a port", http1([`GET /healthz HTTP/1.1`, "Host: :99999"])],
    ["two Host headers", http1([`GET /healthz HTTP/1.1`, "Host: a", "Host: b"])],
    ["an unknown method", http1(["FROB /healthz HTTP/1.1", "Host: x"])],
    ["a lowercase method", http1(["post /healthz HTTP/1.1", "Host: x"])],
    ["an asterisk target", http1([`OPTIONS * HTTP/1.1`, "Host: x"])],
    ["an absolute-form target", http1([`POST http://x${WHOAMI} HTTP/1.1`, "Host: x", "content-length: 2"], "{}")],
    ["a target with no slash", http1([`GET healthz HTTP/1.1`, "Host: x"])],
    ["percent-garbage in the path", http1([`GET /%ff%00/..%2f..%2fetc/passwd HTTP/1.1`, "Host: x"])],
    ["dot segments to an RPC", http1([`POST /x/../drive.v1.UserService/WhoAmI HTTP/1.1`, "Host: x", "content-length: 2"], "{}")],
    ["a 20 KB path", http1([`GET /${"a".repeat(20_000)} HTTP/1.1`, "Host: x"])],
    ["a blob route path with garbage", http1([`PUT /blobs/%zz?sig=%%% HTTP/1.1`, "Host: x", "content-length: 1"], "x")],
    ["a request line with no version", `GET /healthz\r\n\r\n`],
    ["HTTP/9.9", http1([`GET /healthz HTTP/9.9`, "Host: x"])],
    ["a header without a colon", http1([`GET /healthz HTTP/1.1`, "Host: x", "nonsense"])],
    ["a NUL in a header", http1([`GET /healthz HTTP/1.1`, "Host: x", "x-a: b\0c"])],
    ["conflicting Content-Length", http1([`POST ${WHOAMI} HTTP/1.1`, "Host: x", "content-length: 2", "content-length: 3"], "{}")],
    ["a negative Content-Length", http1([`POST ${WHOAMI} HTTP/1.1`, "Host: x", "content-length: -1"])],
    ["a bad chunk size", http1([`POST ${WHOAMI} HTTP/1.1`, "Host: x", "transfer-encoding: chunked", "authorization: Bearer x"], "zz\r\n{}\r\n0\r\n\r\n")],
    ["Content-Length with chunked", http1([`POST ${WHOAMI} HTTP/1.1`, "Host: x", "content-length: 5", "transfer-encoding: chunked"], "0\r\n\r\n")],
    ["binary garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + "\xff".repeat(300)],
    ["a lone CRLF", "\r\n\r\n"],
  ];
  for (const [name, bytes] of cases) {
    it(`survives ${name}`, async () => {
      const reply = await rawExchange(server.url, bytes);
      // Whatever the answer, it is not a 5xx from a crash, and the process lives.
      expect(reply.status === 0 || reply.status < 500, reply.text).toBe(true);
      await expectServing();
    });
  }

  it("survives truncated bodies, unauthenticated and authenticated, on RPC and blob paths", async () => {
    for (const head of [
      [`POST ${WHOAMI} HTTP/1.1`, "Host: x", "content-type: application/json", "content-length: 100"],
      [`POST ${WHOAMI} HTTP/1.1`, "Host: x", "content-type: application/json", "content-length: 100", `authorization: Bearer ${server.adminToken}`],
      [`POST ${WHOAMI} HTTP/1.1`, "Host: x", "content-type: application/grpc-web+proto", "content-length: 100", `authorization: Bearer ${server.adminToken}`],
      [`POST ${WHOAMI} HTTP/1.1`, "Host: x", "content-type: application/json", "transfer-encoding: chunked", `authorization: Bearer ${server.adminToken}`],
      [`PUT /blobs/parts/x?sig=y HTTP/1.1`, "Host: x", "content-length: 100"],
    ]) {
      // Half a body, then the client goes away.
      await rawExchange(server.url, http1(head, head.includes("transfer-encoding: chunked") ? "a\r\n{\"a\"" : '{"a":'), { waitMs: 300 });
      await expectServing();
    }
  });
});

/** The HTTP/2 connection preface and an empty SETTINGS frame. */
const PREFACE = Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), frame(4, 0, 0, Buffer.alloc(0))]);

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK "literal without indexing" with an indexed name (4-bit prefix; index < 15 here). */
function literal(index: number, value: string): Buffer {
  return Buffer.concat([Buffer.from([index, value.length]), Buffer.from(value)]);
}

/** A HEADERS block for POST <path> with no :authority and no host: connect-node threw on it. */
const noAuthority = Buffer.concat([
  Buffer.from([0x83, 0x86]), // :method POST, :scheme http (static table)
  literal(4, WHOAMI), // :path
  Buffer.from([0x0f, 0x10, "application/json".length]), // content-type (static index 31)
  Buffer.from("application/json"),
]);

describe("malformed HTTP/2", () => {
  const frames: Array<[string, Buffer]> = [
    ["garbage after the preface", Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.from("garbage!".repeat(100))])],
    ["garbage in place of the preface's end", Buffer.from("PRI * HTTP/2.0\r\nxxxxxxxxxxxxxxxxxxxxxxxx")],
    ["HEADERS with bad HPACK", Buffer.concat([PREFACE, frame(1, 0x5, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f]))])],
    ["a frame longer than allowed", Buffer.concat([PREFACE, Buffer.from([0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1]), Buffer.alloc(1000)])],
    ["DATA on stream 0", Buffer.concat([PREFACE, frame(0, 1, 0, Buffer.from("x"))])],
    ["DATA on an idle stream", Buffer.concat([PREFACE, frame(0, 1, 7, Buffer.from("x"))])],
    ["HEADERS on an even stream", Buffer.concat([PREFACE, frame(1, 0x5, 2, Buffer.from([0x82, 0x86, 0x84]))])],
    ["a WINDOW_UPDATE of 0", Buffer.concat([PREFACE, frame(8, 0, 0, Buffer.alloc(4))])],
    ["a SETTINGS frame of odd length", Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(5))])],
    ["HEADERS without END_HEADERS, then DATA", Buffer.concat([PREFACE, frame(1, 0, 1, Buffer.from([0x83])), frame(0, 1, 1, Buffer.from("x"))])],
    ["an RPC with no :authority", Buffer.concat([PREFACE, frame(1, 0x5, 1, noAuthority)])],
    ["an RPC with no :authority, then RST_STREAM", Buffer.concat([PREFACE, frame(1, 0x4, 1, noAuthority), frame(3, 0, 1, Buffer.from([0, 0, 0, 8]))])],
    ["GOAWAY at once", Buffer.concat([PREFACE, frame(7, 0, 0, Buffer.alloc(8))])],
  ];
  for (const [name, bytes] of frames) {
    it(`survives ${name}`, async () => {
      await rawExchange(server.url, bytes, { waitMs: 500 });
      await expectServing();
    });
  }

  /** One request on a fresh session; resolves with the status (0 if none) once the session is gone. */
  function h2Request(headers: http2.OutgoingHttpHeaders, act: (req: http2.ClientHttp2Stream, session: http2.ClientHttp2Session) => void): Promise<number> {
    return new Promise((resolve) => {
      let status = 0;
      const session = http2.connect(server.url);
      session.on("error", () => {});
      session.on("close", () => resolve(status));
      let req: http2.ClientHttp2Stream;
      try {
        req = session.request(headers);
      } catch {
        session.destroy();
        return;
      }
      req.on("response", (h) => (status = Number(h[":status"])));
      req.on("error", () => {});
      req.on("close", () => session.close());
      req.resume();
      act(req, session);
    });
  }

  const token = () => `Bearer ${server.adminToken}`;
  const rpc = (extra: http2.OutgoingHttpHeaders = {}) => ({ ":method": "POST", ":path": WHOAMI, "content-type": "application/json", ...extra });

  it("survives :authority a b (refused by nghttp2 or with 400)", async () => {
    expect([0, 400]).toContain(await h2Request(rpc({ ":authority": "a b" }), (req) => req.end("{}")));
    await expectServing();
  });

  it("survives an unknown method, an asterisk path and a NUL-laden path", async () => {
    await h2Request({ ":method": "FROB", ":path": WHOAMI }, (req) => req.end());
    await h2Request({ ":method": "OPTIONS", ":path": "*" }, (req) => req.end());
    await h2Request({ ":method": "GET", ":path": "/%00/%ff/../../x" }, (req) => req.end());
    await expectServing();
  });

  it("survives a stream reset mid-body, unauthenticated and authenticated", async () => {
    for (const auth of [{}, { authorization: token() }]) {
      await h2Request(rpc(auth), (req) => {
        req.write('{"a":');
        setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), 100);
      });
      await h2Request(rpc({ ...auth, "content-type": "application/grpc+proto", te: "trailers" }), (req) => {
        req.write(Buffer.from([0, 0, 0, 0, 100, 1, 2]));
        setTimeout(() => req.close(http2.constants.NGHTTP2_INTERNAL_ERROR), 100);
      });
    }
    await expectServing();
  });

  it("survives a session destroyed mid-request and a body that ends early", async () => {
    await h2Request(rpc({ authorization: token(), "content-length": "100" }), (req, session) => {
      req.write('{"a":');
      setTimeout(() => session.destroy(), 100);
    });
    await h2Request(rpc({ authorization: token(), "content-length": "100" }), (req) => req.end('{"a":'));
    await expectServing();
  });
});
