import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_CHUNK_SIZE } from "../../shared/rules/chunking.js";
import { runDrive } from "../support/drive-cli.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import {
  bearer,
  connectGrpc,
  grpcError,
  httpRequest,
  messageOf,
  partBody,
  planUpload,
  putPart,
  Status,
  unary,
  type CreateUploadMsg,
  type DriveGrpc,
  type GetDownloadMsg,
  type HttpReply,
  type PresignedPartMsg,
} from "../support/grpc-client.js";

const MiB = 1024 * 1024;
// The smallest part size a client may ask for (S3's part minimum).
const PART = 5 * MiB;

/** The ETag a PUT was answered with, unquoted, as ReportParts takes it. */
function etagOf(res: HttpReply): string {
  const etag = String(res.headers.etag ?? "").replace(/"/g, "");
  expect(etag).not.toBe("");
  return etag;
}

/** A copy of `url` with one thing changed. */
function edit(url: string, change: (u: URL) => void): string {
  const u = new URL(url);
  change(u);
  return u.toString();
}

/**
 * The same text with its last character replaced by another of the same
 * kind (hex stays hex), so the forgery is well-formed and only the
 * signature can catch it.
 */
function flipLast(text: string): string {
  return text.slice(0, -1) + (text.endsWith("0") ? "1" : "0");
}

function setQuery(name: string, value: (old: string) => string) {
  return (u: URL) => u.searchParams.set(name, value(u.searchParams.get(name) ?? ""));
}

/** Replaces the last path segment (the part number) or the one before it (the upload id). */
function setPathSegment(fromEnd: number, value: (old: string) => string) {
  return (u: URL) => {
    const segments = u.pathname.split("/");
    const i = segments.length - 1 - fromEnd;
    segments[i] = value(segments[i]!);
    u.pathname = segments.join("/");
  };
}

/** Waits until the server's clock, which is ours, is past a URL's `expires`. */
async function waitUntilExpired(url: string): Promise<void> {
  const expires = Number(new URL(url).searchParams.get("expires"));
  expect(expires).toBeGreaterThan(0);
  await sleep(Math.max(0, (expires + 0.5) * 1000 - Date.now()));
}

describe("presigned blob URLs against the real server", () => {
  let server: TestServer;
  let grpc: DriveGrpc;
  let dir: string;
  const md = () => bearer(server.adminToken);

  // Two parts: a full one and a short last one, small enough that a refused
  // request's whole body arrives in one write. The server plans the parts;
  // asked for 5 MiB parts, it ends one after the first chunk that takes it to
  // 5 MiB when that chunk is at least its boundary spacing (3.5 MiB; see
  // groupingFor in shared/rules/part-plan.ts), so 4 MiB chunks give parts of
  // chunks 0-1 (8 MiB) and chunk 2 (100 bytes) whatever the bytes.
  const data = randomBytes(2 * MAX_CHUNK_SIZE + 100);
  const plan = planUpload("signed/upload.bin", data, MAX_CHUNK_SIZE);
  const request = { ...plan.request, partSize: PART };
  let upload: CreateUploadMsg;
  let part1: PresignedPartMsg;
  let part2: PresignedPartMsg;
  let bodies: [Buffer, Buffer];
  const pushed = randomBytes(300_000);
  let getUrl: string;

  beforeAll(async () => {
    server = await startDriveServer();
    grpc = connectGrpc(server.url);
    dir = await mkdtemp(join(tmpdir(), "drive-signed-"));

    await writeFile(join(dir, "pushed.bin"), pushed);
    const push = await runDrive(["push", "pushed.bin", "signed/pushed.bin"], { server: server.url, token: server.adminToken, cwd: dir });
    expect(push.code, push.stderr).toBe(0);
    getUrl = (await unary<GetDownloadMsg>(grpc.files, "GetDownload", { path: "signed/pushed.bin" }, md())).url;

    upload = await unary<CreateUploadMsg>(grpc.uploads, "CreateUpload", request, md());
    expect(upload.parts.map((p) => [p.partNumber, p.firstChunk, p.chunkCount, p.size, p.serverCopy])).toEqual([
      [1, 0, 2, 2 * MAX_CHUNK_SIZE, false],
      [2, 2, 1, 100, false],
    ]);
    [part1, part2] = upload.urls as [PresignedPartMsg, PresignedPartMsg];
    expect([part1.partNumber, part2.partNumber]).toEqual([1, 2]);
    bodies = [partBody(data, plan.chunks, upload.parts[0]!), partBody(data, plan.chunks, upload.parts[1]!)];
  });
  afterAll(async () => {
    grpc?.close();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const put = (url: string, body: Buffer, headers: Record<string, string> = {}) =>
    httpRequest(url, { method: "PUT", headers: { ...part1.headers, "content-length": String(body.length), ...headers }, body });

  describe("refuses a PUT URL that was tampered with", () => {
    const cases: Array<[string, (u: URL) => void, () => Buffer]> = [
      ["a forged signature", setQuery("sig", flipLast), () => bodies[0]],
      ["the signature of another part", (u) => u.searchParams.set("sig", new URL(part2.url).searchParams.get("sig")!), () => bodies[0]],
      ["another part number", setPathSegment(0, () => "2"), () => bodies[0]],
      ["another key", setQuery("key", flipLast), () => bodies[0]],
      ["another upload id", setPathSegment(1, flipLast), () => bodies[0]],
      // The body matches the altered size: only the signature can tell.
      ["a smaller size", setQuery("size", (s) => String(Number(s) - 1)), () => bodies[0].subarray(1)],
      ["a later expiry", setQuery("expires", (e) => String(Number(e) + 3600)), () => bodies[0]],
    ];
    it.each(cases)("%s → 403", async (_name, change, body) => {
      const res = await put(edit(part1.url, change), body());
      expect(res.status, res.body.toString()).toBe(403);
    });
  });

  it("refuses a PUT URL used with GET, and a GET URL used with PUT", async () => {
    const get = await httpRequest(part1.url, { method: "GET" });
    expect([403, 404], get.body.toString()).toContain(get.status);
    const putToGet = await httpRequest(getUrl, { method: "PUT", headers: { "content-length": String(pushed.length) }, body: pushed });
    expect([403, 404], putToGet.body.toString()).toContain(putToGet.status);
  });

  it("refuses a body over the signed size", async () => {
    const longer = Buffer.concat([bodies[1], Buffer.from("x")]);
    const tooLong = await put(part2.url, longer);
    expect(tooLong.status, tooLong.body.toString()).toBeGreaterThanOrEqual(400);
    expect(tooLong.status).toBeLessThan(500);

    // No Content-Length at all: a chunked body could be any length.
    const chunked = await httpRequest(part2.url, { method: "PUT", headers: { ...part2.headers, "transfer-encoding": "chunked" }, body: longer });
    expect(chunked.status, chunked.body.toString()).toBeGreaterThanOrEqual(400);
    expect(chunked.status).toBeLessThan(500);
  });

  // A part URL's size is now the most a PUT may carry (PresignedPart.max_size), since a part stored
  // compressed is shorter than its plaintext: the store takes a shorter body, so the refusal of a
  // short body moved to CompleteUpload, which checks every part's stored size against its report.
  // On an upload of its own, so that the one above still has nothing stored.
  it("takes a body under the signed size, and CompleteUpload refuses it as a raw part", async () => {
    const small = randomBytes(1000);
    const one = planUpload("signed/short.bin", small);
    const created = await unary<CreateUploadMsg>(grpc.uploads, "CreateUpload", one.request, md());
    const [url] = created.urls as [PresignedPartMsg];
    expect(url.maxSize).toBe(small.length);
    const short = await putPart(url, small.subarray(1));
    expect(short.status, short.body.toString()).toBe(200);
    await unary(grpc.uploads, "ReportParts", { uploadId: created.uploadId, parts: [{ partNumber: 1, etag: etagOf(short), codec: "CODEC_NONE" }] }, md());
    const err = await grpcError(unary(grpc.uploads, "CompleteUpload", { uploadId: created.uploadId }, md()));
    expect(err.code, err.details).toBe(Status.FAILED_PRECONDITION);
    expect(messageOf(err)).toMatch(/parts stored with the wrong size or unconfirmed bytes: 1\b/);
    await unary(grpc.uploads, "AbortUpload", { uploadId: created.uploadId }, md());
  });

  it("refuses a GET URL that was tampered with", async () => {
    for (const change of [setQuery("sig", flipLast), setQuery("key", flipLast), setQuery("expires", (e) => String(Number(e) + 3600))]) {
      const res = await httpRequest(edit(getUrl, change), { method: "GET" });
      expect(res.status, res.body.toString()).toBe(403);
    }
  });

  it("stored nothing for any refused request", async () => {
    const err = await grpcError(unary(grpc.uploads, "CompleteUpload", { uploadId: upload.uploadId }, md()));
    expect(err.code, err.details).toBe(Status.FAILED_PRECONDITION);
    expect(messageOf(err)).toMatch(/parts missing from the store: 1, 2\b/);
    expect(messageOf(err)).not.toMatch(/wrong/);
    // The resume view reads the store itself: still nothing there.
    const again = await unary<CreateUploadMsg>(grpc.uploads, "CreateUpload", request, md());
    expect(again).toMatchObject({ uploadId: upload.uploadId, resumed: true });
    expect(again.parts.map((p) => p.state)).toEqual(["PART_STATE_PENDING", "PART_STATE_PENDING"]);
  });

  it("still accepts the untouched URLs, so the refusals were about the changes", async () => {
    const reports = [];
    for (const [part, body] of [
      [part1, bodies[0]],
      [part2, bodies[1]],
    ] as const) {
      const res = await putPart(part, body);
      expect(res.status, res.body.toString()).toBe(200);
      reports.push({ partNumber: part.partNumber, etag: etagOf(res), codec: "CODEC_NONE" });
    }
    // A part counts once reported, with the ETag the store answered.
    await unary(grpc.uploads, "ReportParts", { uploadId: upload.uploadId, parts: reports }, md());
    const done = await unary<{ file: { size: number } }>(grpc.uploads, "CompleteUpload", { uploadId: upload.uploadId }, md());
    expect(done.file.size).toBe(data.length);
    const fresh = await unary<GetDownloadMsg>(grpc.files, "GetDownload", { path: "signed/upload.bin" }, md());
    expect((await httpRequest(fresh.url, { method: "GET" })).body.equals(data)).toBe(true);

    const get = await httpRequest(getUrl, { method: "GET" });
    expect(get.status).toBe(200);
    expect(get.body.equals(pushed)).toBe(true);
  });
});

describe("presigned URLs expire", () => {
  let server: TestServer;
  let grpc: DriveGrpc;
  let dir: string;
  const md = () => bearer(server.adminToken);

  beforeAll(async () => {
    server = await startDriveServer({ args: ["--url-ttl", "1s"] });
    grpc = connectGrpc(server.url);
    dir = await mkdtemp(join(tmpdir(), "drive-expiry-"));
  });
  afterAll(async () => {
    grpc?.close();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("refuses a part URL after --url-ttl, and a fresh one works", async () => {
    const data = randomBytes(1000); // one chunk, one part
    const plan = planUpload("expiry/part.bin", data);
    const upload = await unary<CreateUploadMsg>(grpc.uploads, "CreateUpload", plan.request, md());
    expect(upload.urlExpiresInSeconds).toBe(1);
    const stale = upload.urls[0]!;
    await waitUntilExpired(stale.url);

    const refused = await putPart(stale, data);
    expect(refused.status, refused.body.toString()).toBe(403);
    expect(refused.body.toString()).toMatch(/expired/i);

    const renewed = await unary<{ urls: PresignedPartMsg[] }>(grpc.uploads, "PresignParts", { uploadId: upload.uploadId, partNumbers: [1] }, md());
    const res = await putPart(renewed.urls[0]!, data);
    expect(res.status, res.body.toString()).toBe(200);
    await unary(grpc.uploads, "ReportParts", { uploadId: upload.uploadId, parts: [{ partNumber: 1, etag: etagOf(res), codec: "CODEC_NONE" }] }, md());
    const done = await unary<{ file: { size: number } }>(grpc.uploads, "CompleteUpload", { uploadId: upload.uploadId }, md());
    expect(done.file.size).toBe(data.length);
  });

  it("refuses a download URL after --url-ttl, and a fresh one works", async () => {
    const data = randomBytes(1000);
    await writeFile(join(dir, "get.bin"), data);
    const push = await runDrive(["push", "get.bin", "expiry/get.bin"], { server: server.url, token: server.adminToken, cwd: dir });
    expect(push.code, push.stderr).toBe(0);
    const stale = await unary<GetDownloadMsg>(grpc.files, "GetDownload", { path: "expiry/get.bin" }, md());
    await waitUntilExpired(stale.url);

    const refused = await httpRequest(stale.url, { method: "GET" });
    expect(refused.status).toBe(403);
    expect(refused.body.toString()).toMatch(/expired/i);

    const fresh = await unary<GetDownloadMsg>(grpc.files, "GetDownload", { path: "expiry/get.bin" }, md());
    const res = await httpRequest(fresh.url, { method: "GET" });
    expect(res.status).toBe(200);
    expect(res.body.equals(data)).toBe(true);
  });
});
