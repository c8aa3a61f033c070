import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_CHUNK_SIZE } from "../../shared/rules/chunking.js";
import { runDrive } from "../support/drive-cli.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import {
  bearer,
  connectGrpc,
  errorInfoOf,
  grpcError,
  httpRequest,
  partBody,
  planUpload,
  putPart,
  Status,
  unary,
  type CreateUploadMsg,
  type DriveGrpc,
} from "../support/grpc-client.js";

const MiB = 1024 * 1024;
// The smallest part size a client may ask for (S3's part minimum).
const PART = 5 * MiB;

/**
 * Every failure a client must tell apart carries a typed reason
 * (drive.v1.ErrorInfo): the CLI exits by it, and stock gRPC and Connect
 * peers read it from grpc-status-details-bin and the JSON error body.
 */
describe("typed error reasons", () => {
  let server: TestServer;
  let grpc: DriveGrpc;
  let dir: string;
  const md = () => bearer(server.adminToken);
  const drive = (args: string[]) => runDrive(args, { server: server.url, token: server.adminToken, cwd: dir });

  beforeAll(async () => {
    server = await startDriveServer();
    grpc = connectGrpc(server.url);
    dir = await mkdtemp(join(tmpdir(), "drive-reasons-"));
  });
  afterAll(async () => {
    grpc?.close();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("a stale --if-revision exits 6 with the reason REVISION_CONFLICT", async () => {
    await writeFile(join(dir, "c.txt"), "first");
    expect((await drive(["push", "--if-revision", "0", "c.txt", "cas/c.txt"])).code).toBe(0);
    await writeFile(join(dir, "c.txt"), "second");
    const push = await drive(["--json", "push", "--if-revision", "0", "c.txt", "cas/c.txt"]);
    expect(push.code, push.stderr + push.stdout).toBe(6);
    expect(push.lines.at(-1)).toMatchObject({ type: "exit_error", code: "conflict", exit_code: 6, reason: "REVISION_CONFLICT" });
    expect(push.lines.at(-1)!.message).toMatch(/cas\/c\.txt changed: it is at revision 1, the change was based on 0/);

    const del = await drive(["--json", "rm", "--if-revision", "7", "cas/c.txt"]);
    expect(del.code).toBe(6);
    expect(del.lines.at(-1)).toMatchObject({ code: "conflict", reason: "REVISION_CONFLICT" });
  });

  it("a stock gRPC client finds the revisions in grpc-status-details-bin", async () => {
    await writeFile(join(dir, "r.bin"), randomBytes(1000));
    expect((await drive(["push", "r.bin", "grpc/r.bin"])).code).toBe(0);
    const other = planUpload("grpc/r.bin", randomBytes(1000)).request;
    const err = await grpcError(unary(grpc.uploads, "CreateUpload", { ...other, baseRevision: 0 }, md()));
    expect(err.code).toBe(Status.FAILED_PRECONDITION);
    expect(errorInfoOf(err)).toMatchObject({
      reason: "ERROR_REASON_REVISION_CONFLICT",
      revisionConflict: { currentRevision: 1, baseRevision: 0, currentDeleted: false },
    });
  });

  it("tells parts missing from a conflict, and names the parts", async () => {
    // Two parts, whatever the bytes: asked for 5 MiB parts, the server ends one after the first chunk
    // that takes it to 5 MiB when that chunk is at least its boundary spacing (3.5 MiB; see groupingFor in
    // shared/rules/part-plan.ts), so 4 MiB chunks give parts of chunks 0-1 and chunk 2.
    const { request } = planUpload("grpc/missing.bin", randomBytes(2 * MAX_CHUNK_SIZE + 10), MAX_CHUNK_SIZE);
    const created = await unary<CreateUploadMsg>(grpc.uploads, "CreateUpload", { ...request, partSize: PART }, md());
    expect(created.parts.map((p) => [p.partNumber, p.chunkCount, p.serverCopy])).toEqual([
      [1, 2, false],
      [2, 1, false],
    ]);
    const err = await grpcError(unary(grpc.uploads, "CompleteUpload", { uploadId: created.uploadId }, md()));
    expect(err.code).toBe(Status.FAILED_PRECONDITION);
    expect(errorInfoOf(err)).toMatchObject({
      reason: "ERROR_REASON_PARTS_MISSING",
      partsIncomplete: { missing: [1, 2], missingCount: 2, unconfirmedCount: 0 },
    });

    const gone = await grpcError(unary(grpc.uploads, "CompleteUpload", { uploadId: "f".repeat(32) }, md()));
    expect(gone.code).toBe(Status.NOT_FOUND);
    expect(errorInfoOf(gone)).toMatchObject({ reason: "ERROR_REASON_UPLOAD_NOT_FOUND" });
  });

  it("says a completed upload is completed, to a call that needs it open", async () => {
    const data = randomBytes(2000); // one chunk, one part
    const { request, chunks } = planUpload("grpc/done.bin", data);
    const created = await unary<CreateUploadMsg>(grpc.uploads, "CreateUpload", request, md());
    const put = await putPart(created.urls[0]!, partBody(data, chunks, created.parts[0]!));
    expect(put.status).toBe(200);
    // A part counts once reported, with the ETag the store answered.
    const etag = String(put.headers.etag ?? "").replace(/"/g, "");
    await unary(grpc.uploads, "ReportParts", { uploadId: created.uploadId, parts: [{ partNumber: 1, etag, codec: "CODEC_NONE" }] }, md());
    await unary(grpc.uploads, "CompleteUpload", { uploadId: created.uploadId }, md());
    const err = await grpcError(unary(grpc.uploads, "PresignParts", { uploadId: created.uploadId, partNumbers: [1] }, md()));
    expect(err.code).toBe(Status.FAILED_PRECONDITION);
    expect(errorInfoOf(err)).toMatchObject({ reason: "ERROR_REASON_UPLOAD_COMPLETED" });
  });

  it("puts the detail in a Connect JSON error body", async () => {
    const res = await httpRequest(`${server.url}/drive.v1.FileService/Delete`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${server.adminToken}` },
      body: JSON.stringify({ path: "cas/c.txt", baseRevision: "9" }),
    });
    expect(res.status).toBe(400); // Connect's HTTP status for failed_precondition
    const body = JSON.parse(res.body.toString("utf8"));
    expect(body).toMatchObject({ code: "failed_precondition", details: [{ type: "drive.v1.ErrorInfo" }] });
    expect(body.details[0].debug).toMatchObject({ reason: "ERROR_REASON_REVISION_CONFLICT", revisionConflict: { baseRevision: "9" } });
  });
});
