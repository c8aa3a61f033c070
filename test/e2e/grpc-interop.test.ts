import { randomBytes } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserService } from "../../gen/drive/v1/user_pb.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import {
  bearer,
  blake3,
  CHUNKS_PER_PAGE,
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
  type DeclareChunksMsg,
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
  const md = () => bearer(server.adminToken);
  const createUpload = (req: Record<string, unknown>) => unary<CreateUploadMsg>(grpc.uploads, "CreateUpload", req, md());

  beforeAll(async () => {
    server = await startDriveServer();
    grpc = connectGrpc(server.url);
  });
  afterAll(async () => {
    grpc?.close();
    await server?.stop();
  });

  it("answers WhoAmI", async () => {
    expect(await unary(grpc.users, "WhoAmI", {}, md())).toEqual({ name: "admin", admin: true });
  });

  describe("uploads and downloads through grpc-js and node:http alone", () => {
    // Eleven chunks of 1 MiB and a short one: parts of whole chunks, as the server plans them.
    const data = randomBytes(11 * MiB + 777_777);
    const plan = planUpload("interop/uploaded.bin", data);

    it("runs CreateUpload, PUTs of each planned part, ReportParts and an idempotent CompleteUpload", async () => {
      const created = await createUpload(plan.request);
      expect(created.committed).toBeNull();
      expect(created).toMatchObject({ resumed: false, chunksDeclared: 12 });
      expect(created.uploadId).not.toBe("");
      expect(created.parts.length).toBeGreaterThan(0);
      expect(created.parts.reduce((n, p) => n + p.chunkCount, 0)).toBe(12);
      for (const p of created.parts) expect(p).toMatchObject({ state: "PART_STATE_PENDING", storedEtag: "", serverCopy: false });
      expect(created.urls.map((u) => u.partNumber)).toEqual(created.parts.map((p) => p.partNumber));

      const reports = [];
      for (const url of created.urls) {
        const part = created.parts[url.partNumber - 1]!;
        expect(url.maxSize).toBe(part.size);
        const res = await putPart(url, partBody(data, plan.chunks, part));
        expect(res.status, res.body.toString()).toBe(200);
        const etag = String(res.headers.etag ?? "").replace(/"/g, "");
        expect(etag).not.toBe("");
        reports.push({ partNumber: url.partNumber, etag, codec: "CODEC_NONE" });
      }
      await unary(grpc.uploads, "ReportParts", { uploadId: created.uploadId, parts: reports }, md());

      const first = await unary<{ file: FileInfoMsg }>(grpc.uploads, "CompleteUpload", { uploadId: created.uploadId }, md());
      expect(first.file).toMatchObject({ path: "interop/uploaded.bin", size: data.length, revision: 1, deleted: false, contentHashKind: "CONTENT_HASH_KIND_BLAKE3" });
      expect(first.file.contentHash.equals(blake3(data))).toBe(true);
      // A retry after a lost reply gets the same answer and commits nothing new.
      const again = await unary<{ file: FileInfoMsg }>(grpc.uploads, "CompleteUpload", { uploadId: created.uploadId }, md());
      expect(again.file).toEqual(first.file);
      const versions = await unary<{ versions: Array<{ contentHashKind: string }> }>(grpc.files, "ListVersions", { path: "interop/uploaded.bin" }, md());
      expect(versions.versions.map((v) => v.contentHashKind)).toEqual(["CONTENT_HASH_KIND_BLAKE3"]);
    });

    it("lists and stats it with its size, revision, content hash, hash kind and a real timestamp", async () => {
      const res = await unary<{ files: FileInfoMsg[]; nextPageToken: string }>(grpc.files, "ListFiles", { prefix: "interop/" }, md());
      expect(res.nextPageToken).toBe("");
      expect(res.files).toHaveLength(1);
      const f = res.files[0]!;
      expect(f).toMatchObject({ path: "interop/uploaded.bin", size: data.length, revision: 1, deleted: false, contentHashKind: "CONTENT_HASH_KIND_BLAKE3" });
      expect(f.contentHash.equals(blake3(data))).toBe(true);
      // google.protobuf.Timestamp decoded from the well-known type: now-ish, not zero.
      expect(f.modifiedAt!.seconds).toBeGreaterThan(Date.now() / 1000 - 3600);
      const { file } = await unary<{ file: FileInfoMsg }>(grpc.files, "Stat", { path: "interop/uploaded.bin" }, md());
      expect(file).toEqual(f);
    });

    it("gives a download URL and a stored layout that verifies, chunk by chunk and whole", async () => {
      const res = await unary<GetDownloadMsg>(grpc.files, "GetDownload", { path: "interop/uploaded.bin" }, md());
      expect(res).toMatchObject({ revision: 1, chunkCount: 12, storedSize: data.length });
      expect(res.urlExpiresInSeconds).toBeGreaterThan(0);
      expect(res.url.startsWith(server.url + "/")).toBe(true);
      expect(res.chunks.map((c) => c.size)).toEqual(plan.chunks.map((c) => c.size));
      for (const [i, c] of res.chunks.entries()) {
        expect(c).toMatchObject({ offset: i * MiB, storedOffset: i * MiB, storedSize: c.size, codec: "CODEC_NONE" });
        // Each chunk alone, by its stored range.
        const got = await httpRequest(res.url, { method: "GET", headers: { range: `bytes=${c.storedOffset}-${c.storedOffset + c.storedSize - 1}` } });
        expect(got.status).toBe(206);
        expect(blake3(got.body).equals(c.hash)).toBe(true);
      }
      const whole = await httpRequest(res.url, { method: "GET" });
      expect(whole.status).toBe(200);
      expect(blake3(whole.body).equals(res.file.contentHash)).toBe(true);
    });

    it("declares a list longer than a page with DeclareChunks, and gets the plan with the last page", async () => {
      // 9,000 chunks of 256 KiB that no byte backs: the server checks the list, not bytes it never sees.
      const chunks = Array.from({ length: 9000 }, (_, i) => ({ size: 256 * 1024, hash: blake3(`interop-${i}`) }));
      const created = await createUpload({
        path: "interop/long-list.bin",
        size: 9000 * 256 * 1024,
        contentHash: blake3("interop-long-list"),
        contentHashKind: "CONTENT_HASH_KIND_BLAKE3",
        chunkCount: 9000,
        chunks: chunks.slice(0, CHUNKS_PER_PAGE),
      });
      expect(created).toMatchObject({ chunksDeclared: CHUNKS_PER_PAGE, parts: [], urls: [] });
      const rest = await unary<DeclareChunksMsg>(
        grpc.uploads,
        "DeclareChunks",
        { uploadId: created.uploadId, firstChunk: CHUNKS_PER_PAGE, chunks: chunks.slice(CHUNKS_PER_PAGE) },
        md(),
      );
      expect(rest.chunksDeclared).toBe(9000);
      expect(rest.parts.reduce((n, p) => n + p.chunkCount, 0)).toBe(9000);
      expect(rest.urls.length).toBe(Math.min(64, rest.parts.length));
      const gap = await grpcError(unary(grpc.uploads, "DeclareChunks", { uploadId: created.uploadId, firstChunk: 9001, chunks: [] }, md()));
      expect(gap.code, gap.details).toBe(Status.FAILED_PRECONDITION);
      await unary(grpc.uploads, "AbortUpload", { uploadId: created.uploadId }, md());
    });

    it("CompleteUpload after AbortUpload is NOT_FOUND, and aborting again succeeds", async () => {
      const small = randomBytes(PART + 1);
      const { request, chunks } = planUpload("interop/aborted.bin", small);
      const created = await createUpload(request);
      expect((await putPart(created.urls[0]!, partBody(small, chunks, created.parts[0]!))).status).toBe(200);

      await unary(grpc.uploads, "AbortUpload", { uploadId: created.uploadId }, md());
      const err = await grpcError(unary(grpc.uploads, "CompleteUpload", { uploadId: created.uploadId }, md()));
      expect(err.code, err.details).toBe(Status.NOT_FOUND);
      await unary(grpc.uploads, "AbortUpload", { uploadId: created.uploadId }, md());

      const stat = await grpcError(unary(grpc.files, "Stat", { path: "interop/aborted.bin" }, md()));
      expect(stat.code).toBe(Status.NOT_FOUND);
    });
  });

  describe("status codes", () => {
    it.each(["../escape", "/absolute", "a//b", "a/./b", ""])("CreateUpload to %j is INVALID_ARGUMENT", async (path) => {
      const { request } = planUpload("placeholder", randomBytes(10));
      const err = await grpcError(createUpload({ ...request, path }));
      expect(err.code, err.details).toBe(Status.INVALID_ARGUMENT);
    });

    it("CreateUpload from a client that predates BLAKE3 content hashes is INVALID_ARGUMENT, asking for an upgrade", async () => {
      const { request } = planUpload("interop/old-client.bin", randomBytes(PART + 10));
      const { contentHashKind: _, ...old } = request;
      const err = await grpcError(createUpload(old));
      expect(err.code, err.details).toBe(Status.INVALID_ARGUMENT);
      expect(messageOf(err)).toMatch(/upgrade/);
    });

    it("CreateUpload of one chunk whose content hash is not the chunk's is INVALID_ARGUMENT", async () => {
      const { request } = planUpload("interop/mismatch.bin", randomBytes(1000));
      const wrong = Buffer.from(request.contentHash);
      wrong[0]! ^= 1;
      const err = await grpcError(createUpload({ ...request, contentHash: wrong }));
      expect(err.code, err.details).toBe(Status.INVALID_ARGUMENT);
      expect(messageOf(err)).toMatch(/content_hash of a file of one chunk/);
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
