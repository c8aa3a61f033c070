import { randomBytes } from "node:crypto";
import { EventEmitter, once } from "node:events";
import { mkdtemp, readdir, rm, truncate } from "node:fs/promises";
import http, { type OutgoingHttpHeaders } from "node:http";
import http2 from "node:http2";
import net, { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable, Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobError } from "../../server/blob/errors.js";
import { createBlobRoutes } from "../../server/blob/local/blob-routes.js";
import { parseByteRange } from "../../server/blob/local/byte-range.js";
import { toBlobError } from "../../server/blob/local/fs-errors.js";
import { LocalBlobStore } from "../../server/blob/local/local-store.js";
import { BodyLengthError } from "../../server/blob/local/stage-part.js";
import { expectBlobError, httpRequest, type HttpResponse } from "./conformance.js";

// What the conformance suite cannot say about every store: the local store's
// own URL checks, its on-disk promises, and HTTP/2.

let root: string;
let store: LocalBlobStore;
let server: http.Server;
let origin: string;
/** Emits "done" each time the route handler has finished with a request. */
const handled = new EventEmitter();

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "drive-blob-routes-"));
  store = new LocalBlobStore({ root, secret: randomBytes(32) });
  const routes = createBlobRoutes(store);
  server = http.createServer((req, res) => {
    void routes(req, res).then((ok) => {
      if (!ok) res.writeHead(404).end();
      handled.emit("done");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(root, { recursive: true, force: true });
});

const CS = 5 * 1024 * 1024;
const uploadDir = (uploadId: string) => path.join(root, "uploads", uploadId);

async function presignPart(key: string, uploadId: string, partNumber: number, maxSize: number): Promise<string> {
  return (await store.presignPart({ key, uploadId, partNumber, maxSize, expiresInSeconds: 60, origin })).url;
}

function tamper(url: string, change: (u: URL) => void): string {
  const u = new URL(url);
  change(u);
  return u.toString();
}

function errorCode(res: HttpResponse): string {
  expect(res.headers["content-type"]).toBe("application/json");
  return (JSON.parse(res.body.toString()) as { code: string }).code;
}

/** Nothing but meta.json: no part, and no temp file from a refused or broken PUT. */
async function expectUploadEmpty(key: string, uploadId: string): Promise<void> {
  expect(await store.listParts(key, uploadId)).toEqual([]);
  expect(await readdir(uploadDir(uploadId))).toEqual(["meta.json"]);
}

describe("presigned part URLs", () => {
  it("refuse altered signatures and parameters with 403, and write nothing", async () => {
    const key = "tamper/a";
    const uploadId = await store.createMultipart(key);
    const otherUpload = await store.createMultipart(key);
    const url = await presignPart(key, uploadId, 1, 100);
    const flip = (s: string) => s.slice(0, -1) + (s.endsWith("A") ? "B" : "A");

    const variants: Array<[string, string, number]> = [
      ["signature changed", tamper(url, (u) => u.searchParams.set("sig", flip(u.searchParams.get("sig")!))), 100],
      ["signature decorated", tamper(url, (u) => u.searchParams.set("sig", `${u.searchParams.get("sig")}=`)), 100],
      ["signature missing", tamper(url, (u) => u.searchParams.delete("sig")), 100],
      ["key changed", tamper(url, (u) => u.searchParams.set("key", "tamper/b")), 100],
      ["size changed", tamper(url, (u) => u.searchParams.set("size", "101")), 101],
      ["expiry extended", tamper(url, (u) => u.searchParams.set("expires", String(Number(u.searchParams.get("expires")) + 600))), 100],
      ["part number changed", tamper(url, (u) => (u.pathname = u.pathname.replace(/\/1$/, "/2"))), 100],
      ["upload changed", tamper(url, (u) => (u.pathname = u.pathname.replace(uploadId, otherUpload))), 100],
      ["key with a newline", tamper(url, (u) => u.searchParams.set("key", `${key}\n${uploadId}`)), 100],
    ];
    for (const [label, tampered, size] of variants) {
      const res = await httpRequest(tampered, { method: "PUT", body: randomBytes(size) });
      expect(res.status, label).toBe(403);
      expect(["SignatureDoesNotMatch", "AccessDenied"], label).toContain(errorCode(res));
    }
    await expectUploadEmpty(key, uploadId);
    await expectUploadEmpty(key, otherUpload);

    // The untouched URL still works.
    expect((await httpRequest(url, { method: "PUT", body: randomBytes(100) })).status).toBe(200);
  });

  it("refuse every method but PUT", async () => {
    const key = "method/a";
    const uploadId = await store.createMultipart(key);
    const url = await presignPart(key, uploadId, 1, 10);
    for (const method of ["GET", "HEAD", "POST", "DELETE"]) {
      const res = await httpRequest(url, { method, body: method === "POST" ? randomBytes(10) : undefined });
      expect(res.status, method).toBe(403);
    }
    await expectUploadEmpty(key, uploadId);
  });

  it("require a Content-Length of at most the signed size", async () => {
    const key = "length/a";
    const uploadId = await store.createMultipart(key);
    const url = await presignPart(key, uploadId, 1, 100);

    const long = await httpRequest(url, { method: "PUT", body: randomBytes(101) });
    expect([long.status, errorCode(long)]).toEqual([413, "EntityTooLarge"]);
    const chunked = await httpRequest(url, { method: "PUT", body: randomBytes(100), chunked: true });
    expect([chunked.status, errorCode(chunked)]).toEqual([411, "MissingContentLength"]);
    const malformed = await httpRequest(url, { method: "PUT", headers: { "content-length": "+99" }, body: randomBytes(99) });
    expect(malformed.status).toBe(400);
    await expectUploadEmpty(key, uploadId);

    // Shorter is a part stored compressed: taken at its own length.
    const short = await httpRequest(url, { method: "PUT", body: randomBytes(60) });
    expect(short.status).toBe(200);
    expect((await store.listParts(key, uploadId)).map((p) => p.size)).toEqual([60]);
  });

  it("answer 200 with the BLAKE3 ETag, and 404 NoSuchUpload once the upload is gone", async () => {
    const key = "gone/a";
    const uploadId = await store.createMultipart(key);
    const url = await presignPart(key, uploadId, 1, 10);
    const ok = await httpRequest(url, { method: "PUT", body: Buffer.from("0123456789") });
    expect(ok.status).toBe(200);
    expect(ok.headers.etag).toBe('"53b63a6fc8605d0c0ce559317a00177d72adb24d669235e4c914f443a8831ca1"'); // BLAKE3("0123456789")

    await store.abortMultipart(key, uploadId);
    const gone = await httpRequest(url, { method: "PUT", body: Buffer.from("0123456789") });
    expect([gone.status, errorCode(gone)]).toEqual([404, "NoSuchUpload"]);

    // Signed for a key the upload does not belong to.
    const other = await store.createMultipart("gone/b");
    const wrongKey = await presignPart("gone/a", other, 1, 10);
    expect((await httpRequest(wrongKey, { method: "PUT", body: Buffer.from("0123456789") })).status).toBe(404);
    await expectUploadEmpty("gone/b", other);
  });

  it("leave no part and no temp file when the client disconnects mid-body", async () => {
    const key = "cut/a";
    const uploadId = await store.createMultipart(key);
    const size = 3 * 1024 * 1024;
    const url = new URL(await presignPart(key, uploadId, 1, size));

    const socket = net.connect(Number(url.port), url.hostname);
    await once(socket, "connect");
    socket.write(`PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: ${size}\r\n\r\n`);
    socket.write(randomBytes(2 * 1024 * 1024));
    // Wait until the server is writing the temp file, so the clean-up is what gets tested.
    while (!(await readdir(uploadDir(uploadId))).some((f) => f.endsWith(".tmp"))) await sleep(5);
    const done = once(handled, "done");
    socket.destroy();
    await done;

    await expectUploadEmpty(key, uploadId);
  });

  it("stage a body only when it has exactly the signed length", async () => {
    const key = "exact/a";
    const uploadId = await store.createMultipart(key);
    const body = () => Readable.from([randomBytes(60), randomBytes(60)]);

    const tooLong = await store.receivePart({ key, uploadId, partNumber: 1, size: 100 }, body()).catch((e: unknown) => e);
    expect(tooLong).toBeInstanceOf(BodyLengthError);
    expect((tooLong as BodyLengthError).problem).toBe("too_long");
    const tooShort = await store.receivePart({ key, uploadId, partNumber: 1, size: 200 }, body()).catch((e: unknown) => e);
    expect((tooShort as BodyLengthError).problem).toBe("too_short");
    await expectUploadEmpty(key, uploadId);
  });

  it("answer 413 when a body runs past its signed size, which only a broken HTTP parser would let through", async () => {
    const key = "long/a";
    const uploadId = await store.createMultipart(key);
    const url = new URL(await presignPart(key, uploadId, 1, 100));
    const req = Object.assign(Readable.from([randomBytes(60), randomBytes(60)]), {
      method: "PUT",
      url: url.pathname + url.search,
      headers: { "content-length": "100" },
      httpVersionMajor: 1,
    });
    const res = new CapturedResponse();
    expect(await createBlobRoutes(store)(req, res)).toBe(true);
    await finished(res);
    expect([res.status, JSON.parse(Buffer.concat(res.chunks).toString()).code]).toEqual([413, "EntityTooLarge"]);
    await expectUploadEmpty(key, uploadId);
  });

  it("keep exactly one file per part when uploads of it race", async () => {
    const key = "race/a";
    const uploadId = await store.createMultipart(key);
    const url = await presignPart(key, uploadId, 1, 1000);
    const answers = await Promise.all([1, 2, 3, 4].map(() => httpRequest(url, { method: "PUT", body: randomBytes(1000) })));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200]);

    const listed = await store.listParts(key, uploadId);
    expect(listed).toHaveLength(1);
    expect(answers.map((r) => r.headers.etag)).toContain(`"${listed[0]!.etag}"`);
    expect((await readdir(uploadDir(uploadId))).sort()).toEqual([`1.${listed[0]!.etag}`, "meta.json"]);

    // Racing completions both succeed.
    await Promise.all([store.completeMultipart(key, uploadId, listed), store.completeMultipart(key, uploadId, listed)]);
    expect(await store.stat(key)).toEqual({ size: 1000 });
  });
});

/** Records what the routes answer, for requests no real HTTP parser would deliver. */
class CapturedResponse extends Writable {
  status = 0;
  headers: OutgoingHttpHeaders = {};
  headersSent = false;
  readonly chunks: Buffer[] = [];
  writeHead(status: number, headers: OutgoingHttpHeaders = {}): this {
    Object.assign(this, { status, headers, headersSent: true });
    return this;
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.chunks.push(chunk);
    callback();
  }
}

describe("presigned GET URLs", () => {
  it("answer 404 NoSuchKey, 416 with Content-Range, and serve empty objects", async () => {
    const missing = (await store.presignGet({ key: "get/missing", expiresInSeconds: 60, origin })).url;
    const res404 = await httpRequest(missing, { method: "GET" });
    expect([res404.status, errorCode(res404)]).toEqual([404, "NoSuchKey"]);

    await putObject("get/small", [Buffer.from("hello")]);
    const small = (await store.presignGet({ key: "get/small", expiresInSeconds: 60, origin })).url;
    const res416 = await httpRequest(small, { method: "GET", headers: { range: "bytes=5-" } });
    expect([res416.status, res416.headers["content-range"], errorCode(res416)]).toEqual([416, "bytes */5", "InvalidRange"]);
    const ignored = await httpRequest(small, { method: "GET", headers: { range: "bytes=0-1,3-4" } });
    expect([ignored.status, ignored.body.toString()]).toEqual([200, "hello"]);

    await putObject("get/empty", [Buffer.alloc(0)]);
    const empty = (await store.presignGet({ key: "get/empty", expiresInSeconds: 60, origin })).url;
    const res = await httpRequest(empty, { method: "GET" });
    expect([res.status, res.headers["content-length"], res.body.length]).toEqual([200, "0", 0]);
  });

  it("refuse a tampered key or signature with 403", async () => {
    await putObject("get/secret", [Buffer.from("secret")]);
    await putObject("get/other", [Buffer.from("other")]);
    const url = (await store.presignGet({ key: "get/secret", expiresInSeconds: 60, origin })).url;
    const otherKey = tamper(url, (u) => u.searchParams.set("key", "get/other"));
    expect((await httpRequest(otherKey, { method: "GET" })).status).toBe(403);
    expect((await httpRequest(url, { method: "HEAD" })).status).toBe(403);
  });

  it("cut the response short, and log, when a part file on disk lost bytes", async () => {
    const key = "get/damaged";
    await putObject(key, [randomBytes(CS), randomBytes(1000)]);
    const objectDir = path.join(root, "objects", "get", "damaged~obj");
    const firstPart = (await readdir(objectDir)).find((f) => f.startsWith("1."))!;
    await truncate(path.join(objectDir, firstPart), CS - 1);

    const logged: string[] = [];
    const routes = createBlobRoutes(store, { error: (message) => logged.push(message) });
    const url = new URL((await store.presignGet({ key, expiresInSeconds: 60, origin })).url);
    const local = http.createServer((req, res) => void routes(req, res));
    local.listen(0, "127.0.0.1");
    await once(local, "listening");
    url.port = String((local.address() as AddressInfo).port);
    try {
      await expect(httpRequest(url.toString(), { method: "GET" })).rejects.toThrow();
      expect(logged).toEqual(["blob GET failed mid-stream"]);
    } finally {
      local.closeAllConnections();
      await new Promise((resolve) => local.close(resolve));
    }
  });

  it("leave other paths to the caller", async () => {
    expect((await httpRequest(`${origin}/elsewhere`, { method: "GET" })).status).toBe(404);
    expect((await httpRequest(`${origin}/blob/v1/unknown`, { method: "GET" })).status).toBe(404);
    expect(store.checkUrl("GET", "//[")).toEqual({ kind: "not_blob" });
  });
});

describe("on disk", () => {
  it("refuses keys that could escape or alias a directory", async () => {
    for (const key of ["", "/a", "../a", "a/../b", "a/./b", "a//b", ".hidden", "a b", "a\nb", "ü", "a/..", "x".repeat(1025)]) {
      await expectBlobError(store.createMultipart(key), "invalid");
    }
  });

  it("keeps nested keys apart: deleting or replacing a/b leaves a/b/c", async () => {
    await putObject("nest/a/b", [Buffer.from("outer")]);
    await putObject("nest/a/b/c", [Buffer.from("inner")]);
    await putObject("nest/a/b", [Buffer.from("outer, replaced")]);
    expect(await store.stat("nest/a/b")).toEqual({ size: 15 });
    await store.delete("nest/a/b");
    expect(await store.stat("nest/a/b/c")).toEqual({ size: 5 });
    await expectBlobError(store.stat("nest/a/b"), "not_found");
  });

  it("completes by rename: only the listed parts and the manifest remain, tmp/ is left empty", async () => {
    const key = "disk/a";
    const uploadId = await store.createMultipart(key);
    const keep = await store.receivePart({ key, uploadId, partNumber: 1, size: 4 }, Readable.from([Buffer.from("keep")]));
    await store.receivePart({ key, uploadId, partNumber: 2, size: 4 }, Readable.from([Buffer.from("drop")]));
    await store.completeMultipart(key, uploadId, [keep]);

    const objectFiles = await readdir(path.join(root, "objects", "disk", "a~obj"));
    expect(objectFiles.sort()).toEqual([`1.${keep.etag}`, "manifest.json", "meta.json"]);
    await expectBlobError(store.listParts(key, uploadId), "not_found");
    expect(await readdir(path.join(root, "tmp"))).toEqual([]);
  });

  it("refuses completion with a wrong ETag", async () => {
    const key = "disk/etag";
    const uploadId = await store.createMultipart(key);
    await store.receivePart({ key, uploadId, partNumber: 1, size: 2 }, Readable.from([Buffer.from("hi")]));
    await expectBlobError(store.completeMultipart(key, uploadId, [{ partNumber: 1, etag: "0".repeat(64) }]), "invalid");
    await expectBlobError(store.completeMultipart(key, uploadId, [{ partNumber: 1, etag: "../meta.json" }]), "invalid");
  });

  it("maps filesystem errors to BlobError codes", () => {
    const errno = (code: string) => Object.assign(new Error(code), { code });
    expect(toBlobError(errno("ENOENT"), "x").code).toBe("not_found");
    for (const code of ["ENOSPC", "EMFILE", "EBUSY", "EAGAIN"]) expect(toBlobError(errno(code), "x").code).toBe("retryable");
    expect(toBlobError(errno("EACCES"), "x").code).toBe("permanent");
    const already = new BlobError("invalid", "kept");
    expect(toBlobError(already, "x")).toBe(already);
  });
});

describe("parseByteRange", () => {
  it.each([
    ["bytes=0-9", 100, { kind: "partial", start: 0, end: 10 }],
    ["bytes=90-", 100, { kind: "partial", start: 90, end: 100 }],
    ["bytes=-10", 100, { kind: "partial", start: 90, end: 100 }],
    ["bytes=-500", 100, { kind: "partial", start: 0, end: 100 }],
    ["bytes=50-5000", 100, { kind: "partial", start: 50, end: 100 }],
    ["bytes=100-", 100, { kind: "unsatisfiable" }],
    ["bytes=-0", 100, { kind: "unsatisfiable" }],
    ["bytes=-1", 0, { kind: "unsatisfiable" }],
    ["bytes=9-2", 100, { kind: "full" }],
    ["bytes=0-1,5-6", 100, { kind: "full" }],
    ["items=0-1", 100, { kind: "full" }],
    [undefined, 100, { kind: "full" }],
  ] as const)("%s of %i bytes", (header, size, expected) => {
    expect(parseByteRange(header, size)).toEqual(expected);
  });
});

describe("HTTP/2 compatibility API", () => {
  it("serves part PUTs and ranged GETs", async () => {
    const routes = createBlobRoutes(store);
    const h2 = http2.createServer((req, res) => {
      void routes(req, res).then((ok) => {
        if (!ok) res.writeHead(404).end();
      });
    });
    h2.listen(0, "127.0.0.1");
    await once(h2, "listening");
    const h2origin = `http://127.0.0.1:${(h2.address() as AddressInfo).port}`;
    const session = http2.connect(h2origin);
    try {
      const key = "h2/a";
      const data = randomBytes(3 * 1024 * 1024 + 17);
      const uploadId = await store.createMultipart(key);
      const put = new URL((await store.presignPart({ key, uploadId, partNumber: 1, maxSize: data.length, expiresInSeconds: 60, origin: h2origin })).url);
      const putRes = await h2request(session, { ":method": "PUT", ":path": put.pathname + put.search, "content-length": String(data.length) }, data);
      expect(putRes.status).toBe(200);

      const refused = await h2request(session, { ":method": "PUT", ":path": put.pathname + put.search.replace("sig=", "sig=x"), "content-length": String(data.length) }, data);
      expect(refused.status).toBe(403);

      await store.completeMultipart(key, uploadId, await store.listParts(key, uploadId));
      const get = new URL((await store.presignGet({ key, expiresInSeconds: 60, origin: h2origin })).url);
      const whole = await h2request(session, { ":method": "GET", ":path": get.pathname + get.search });
      expect([whole.status, whole.body.equals(data)]).toEqual([200, true]);
      const ranged = await h2request(session, { ":method": "GET", ":path": get.pathname + get.search, range: "bytes=-17" });
      expect([ranged.status, ranged.body.equals(data.subarray(-17))]).toEqual([206, true]);
    } finally {
      session.close();
      await new Promise((resolve) => h2.close(resolve));
    }
  });
});

async function putObject(key: string, parts: Buffer[]): Promise<void> {
  const uploadId = await store.createMultipart(key);
  for (const [i, data] of parts.entries()) {
    const res = await httpRequest(await presignPart(key, uploadId, i + 1, data.length), { method: "PUT", body: data });
    expect(res.status).toBe(200);
  }
  await store.completeMultipart(key, uploadId, await store.listParts(key, uploadId));
}

function h2request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: Buffer,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers);
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on("response", (h) => (status = Number(h[":status"])));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => resolve({ status, body: Buffer.concat(chunks) }));
    stream.on("error", (err) => (status ? resolve({ status, body: Buffer.concat(chunks) }) : reject(err)));
    stream.end(body);
  });
}
