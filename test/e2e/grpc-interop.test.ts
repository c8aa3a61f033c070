import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserService } from "../../gen/drive/v1/user_pb.js";
import { contentHash } from "../../shared/rules/content-hash.js";
import { runDrive } from "../support/drive-cli.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import {
  bearer,
  connectGrpc,
  grpcError,
  httpRequest,
  messageOf,
  planUpload,
  putPart,
  Status,
  unary,
  type CreateUploadMsg,
  type DriveGrpc,
  type FileInfoMsg,
  type GetDownloadMsg,
} from "../support/grpc-client.js";

const MiB = 1024 * 1024;
// S3's rule: every part but the last is at least 5 MiB.
const PART = 5 * MiB;

/**
 * The server against a peer that shares none of its code: grpc-js with the
 * .proto files, node:http for the data plane and for Connect's JSON.
 */
describe("interoperability with a stock gRPC client", () => {
  let server: TestServer;
  let grpc: DriveGrpc;
  let dir: string;
  const md = () => bearer(server.adminToken);
  const drive = (args: string[]) => runDrive(args, { server: server.url, token: server.adminToken, cwd: dir });
  const createUpload = (req: Record<string, unknown>) => unary<CreateUploadMsg>(grpc.uploads, "CreateUpload", req, md());

  beforeAll(async () => {
    server = await startDriveServer();
    grpc = connectGrpc(server.url);
    dir = await mkdtemp(join(tmpdir(), "drive-grpc-"));
  });
  afterAll(async () => {
    grpc?.close();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("answers WhoAmI", async () => {
    expect(await unary(grpc.users, "WhoAmI", {}, md())).toEqual({ name: "admin", admin: true });
  });

  describe("reads a file the CLI pushed", () => {
    // Two chunks: one full part and a short last one.
    const data = randomBytes(PART + 123_457);
    const chunkHashes = [data.subarray(0, PART), data.subarray(PART)].map((b) => new Blake3Hasher().update(b).digestBuffer());
    const expectedHash = contentHash([
      { size: PART, hash: chunkHashes[0]! },
      { size: data.length - PART, hash: chunkHashes[1]! },
    ]);

    beforeAll(async () => {
      await writeFile(join(dir, "pushed.bin"), data);
      const push = await drive(["--json", "push", "--part-size", "5M", "pushed.bin", "interop/pushed.bin"]);
      expect(push.code, push.stderr + push.stdout).toBe(0);
    });

    it("lists it with its size, revision, content hash and a real timestamp", async () => {
      const res = await unary<{ files: FileInfoMsg[]; nextPageToken: string }>(grpc.files, "ListFiles", { prefix: "interop/" }, md());
      expect(res.nextPageToken).toBe("");
      expect(res.files).toHaveLength(1);
      const f = res.files[0]!;
      expect(f).toMatchObject({ path: "interop/pushed.bin", size: data.length, revision: 1, deleted: false });
      expect(f.contentHash.equals(expectedHash)).toBe(true);
      // google.protobuf.Timestamp decoded from the well-known type: now-ish, not zero.
      expect(f.modifiedAt!.seconds).toBeGreaterThan(Date.now() / 1000 - 3600);
    });

    it("stats it", async () => {
      const { file } = await unary<{ file: FileInfoMsg }>(grpc.files, "Stat", { path: "interop/pushed.bin" }, md());
      expect(file).toMatchObject({ path: "interop/pushed.bin", size: data.length, revision: 1, deleted: false });
      expect(file.contentHash.equals(expectedHash)).toBe(true);
    });

    it("gives a download URL and a chunk list that verifies", async () => {
      const res = await unary<GetDownloadMsg>(grpc.files, "GetDownload", { path: "interop/pushed.bin" }, md());
      expect(res.revision).toBe(1);
      expect(res.urlExpiresInSeconds).toBeGreaterThan(0);
      expect(res.chunks.map((c) => c.size)).toEqual([PART, data.length - PART]);
      res.chunks.forEach((c, i) => {
        expect(c.hash).toHaveLength(32);
        expect(c.hash.equals(chunkHashes[i]!)).toBe(true);
      });
      expect(contentHash(res.chunks).equals(res.file.contentHash)).toBe(true);

      // The URL serves the bytes, and a Range fetches exactly the second chunk.
      expect(res.url.startsWith(server.url + "/")).toBe(true);
      const whole = await httpRequest(res.url, { method: "GET" });
      expect(whole.status).toBe(200);
      expect(whole.body.equals(data)).toBe(true);
      const second = await httpRequest(res.url, { method: "GET", headers: { range: `bytes=${PART}-${data.length - 1}` } });
      expect(second.status).toBe(206);
      expect(second.body.equals(data.subarray(PART))).toBe(true);
    });
  });

  describe("status codes", () => {
    it.each(["../escape", "/absolute", "a//b", "a/./b", ""])("CreateUpload to %j is INVALID_ARGUMENT", async (path) => {
      const { request } = planUpload("placeholder", randomBytes(10), PART);
      const err = await grpcError(createUpload({ ...request, path }));
      expect(err.code, err.details).toBe(Status.INVALID_ARGUMENT);
    });

    it("CreateUpload whose content hash does not match its chunks is INVALID_ARGUMENT", async () => {
      const { request } = planUpload("interop/mismatch.bin", randomBytes(PART + 10), PART);
      const wrong = Buffer.from(request.contentHash);
      wrong[0]! ^= 1;
      const err = await grpcError(createUpload({ ...request, contentHash: wrong }));
      expect(err.code, err.details).toBe(Status.INVALID_ARGUMENT);
      expect(messageOf(err)).toMatch(/content_hash does not match/);
    });

    it("Stat of a missing file is NOT_FOUND", async () => {
      const err = await grpcError(unary(grpc.files, "Stat", { path: "interop/never-there.bin" }, md()));
      expect(err.code, err.details).toBe(Status.NOT_FOUND);
    });

    it("no token, a malformed token and an unknown token are UNAUTHENTICATED", async () => {
      const unknown = server.adminToken.slice(0, -4) + (server.adminToken.endsWith("AAAA") ? "BBBB" : "AAAA");
      for (const token of [undefined, "nonsense", unknown]) {
        const err = await grpcError(unary(grpc.users, "WhoAmI", {}, bearer(token)));
        expect(err.code, `${token}: ${err.details}`).toBe(Status.UNAUTHENTICATED);
      }
      const noAuth = await grpcError(unary(grpc.files, "ListFiles", {}, bearer(undefined)));
      expect(noAuth.code).toBe(Status.UNAUTHENTICATED);
    });
  });

  describe("uploads through grpc-js and node:http alone", () => {
    it("runs CreateUpload, PUTs, ReportParts and an idempotent CompleteUpload; the CLI pulls it back", async () => {
      const data = randomBytes(2 * PART + 777_777);
      const { request, bodies } = planUpload("interop/uploaded.bin", data, PART);
      const created = await createUpload(request);
      expect(created.committed).toBeNull();
      expect(created.resumed).toBe(false);
      expect(created.uploadId).not.toBe("");
      expect(created.parts).toEqual([1, 2, 3].map((n) => ({ partNumber: n, state: "PART_STATE_PENDING", storedEtag: "" })));
      expect(created.urls.map((u) => u.partNumber)).toEqual([1, 2, 3]);

      const reports = [];
      for (const part of created.urls) {
        const res = await putPart(part, bodies[part.partNumber - 1]!);
        expect(res.status, res.body.toString()).toBe(200);
        const etag = String(res.headers.etag ?? "").replace(/"/g, "");
        expect(etag).not.toBe("");
        reports.push({ partNumber: part.partNumber, etag });
      }
      await unary(grpc.uploads, "ReportParts", { uploadId: created.uploadId, parts: reports }, md());

      const first = await unary<{ file: FileInfoMsg }>(grpc.uploads, "CompleteUpload", { uploadId: created.uploadId }, md());
      expect(first.file).toMatchObject({ path: "interop/uploaded.bin", size: data.length, revision: 1, deleted: false });
      expect(first.file.contentHash.equals(request.contentHash)).toBe(true);
      // A retry after a lost reply gets the same answer and commits nothing new.
      const again = await unary<{ file: FileInfoMsg }>(grpc.uploads, "CompleteUpload", { uploadId: created.uploadId }, md());
      expect(again.file).toEqual(first.file);
      const versions = await unary<{ versions: unknown[] }>(grpc.files, "ListVersions", { path: "interop/uploaded.bin" }, md());
      expect(versions.versions).toHaveLength(1);

      const pull = await drive(["--json", "pull", "interop/uploaded.bin", "uploaded-copy.bin"]);
      expect(pull.code, pull.stderr + pull.stdout).toBe(0);
      expect((await readFile(join(dir, "uploaded-copy.bin"))).equals(data)).toBe(true);
    });

    it("CompleteUpload after AbortUpload is NOT_FOUND, and aborting again succeeds", async () => {
      const data = randomBytes(PART + 1);
      const { request, bodies } = planUpload("interop/aborted.bin", data, PART);
      const created = await createUpload(request);
      expect((await putPart(created.urls[0]!, bodies[0]!)).status).toBe(200);

      await unary(grpc.uploads, "AbortUpload", { uploadId: created.uploadId }, md());
      const err = await grpcError(unary(grpc.uploads, "CompleteUpload", { uploadId: created.uploadId }, md()));
      expect(err.code, err.details).toBe(Status.NOT_FOUND);
      await unary(grpc.uploads, "AbortUpload", { uploadId: created.uploadId }, md());

      const stat = await grpcError(unary(grpc.files, "Stat", { path: "interop/aborted.bin" }, md()));
      expect(stat.code).toBe(Status.NOT_FOUND);
    });
  });

  describe("HTTP/1.1", () => {
    it("answers a Connect JSON call", async () => {
      const res = await httpRequest(`${server.url}/drive.v1.UserService/WhoAmI`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${server.adminToken}` },
        body: "{}",
      });
      expect(res.httpVersion).toBe("1.1");
      expect(res.status, res.body.toString()).toBe(200);
      expect(res.headers["content-type"]).toMatch(/^application\/json/);
      expect(JSON.parse(res.body.toString())).toEqual({ name: "admin", admin: true });
    });

    it("answers a Connect JSON call without a token with 401 and code unauthenticated", async () => {
      const res = await httpRequest(`${server.url}/drive.v1.UserService/WhoAmI`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body.toString())).toMatchObject({ code: "unauthenticated" });
    });

    it("answers GET /healthz", async () => {
      const res = await httpRequest(`${server.url}/healthz`, { method: "GET" });
      expect(res.httpVersion).toBe("1.1");
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body.toString())).toEqual({ status: "ok" });
    });
  });

  describe("gRPC-Web", () => {
    it.each(["1.1", "2"] as const)("answers over HTTP/%s on the same port", async (httpVersion) => {
      const transport = createGrpcWebTransport({
        baseUrl: server.url,
        httpVersion,
        interceptors: [
          (next) => (req) => {
            req.header.set("authorization", `Bearer ${server.adminToken}`);
            return next(req);
          },
        ],
      });
      const me = await createClient(UserService, transport).whoAmI({});
      expect(me).toMatchObject({ name: "admin", admin: true });
    });
  });
});
