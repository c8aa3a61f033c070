import { randomBytes } from "node:crypto";
import http2 from "node:http2";
import { create, toBinary, toJsonString, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ListFilesRequestSchema, ListVersionsRequestSchema, StatRequestSchema } from "../../gen/drive/v1/file_pb.js";
import { ContentHashKind } from "../../gen/drive/v1/types_pb.js";
import {
  AbortUploadRequestSchema,
  CompleteUploadRequestSchema,
  CreateUploadRequestSchema,
  DeclareChunksRequestSchema,
  PresignPartsRequestSchema,
  ReportPartsRequestSchema,
} from "../../gen/drive/v1/upload_pb.js";
import { MAX_CHUNK_SIZE, MAX_CHUNKS_PER_PAGE, MIN_CHUNK_SIZE } from "../../shared/rules/chunking.js";
import { MAX_FILE_SIZE, MiB } from "../../shared/rules/part-rules.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import { blake3, planUpload } from "../support/grpc-client.js";

// Malformed and oversized requests, as a hostile client sends them: raw
// Connect unary POSTs, in JSON and in binary protobuf, so that nothing in a
// client library cleans them up first.

let server: TestServer;
let token: string;

type Format = "json" | "binary";
interface Answer {
  status: number;
  code: string;
  message: string;
}

async function post(method: string, body: string | Uint8Array, format: Format): Promise<Answer> {
  const res = await fetch(`${server.url}/drive.v1.${method}`, {
    method: "POST",
    headers: { "content-type": format === "json" ? "application/json" : "application/proto", authorization: `Bearer ${token}` },
    body,
  });
  const text = await res.text();
  if (res.status === 200) return { status: 200, code: "ok", message: "" };
  const err = JSON.parse(text) as { code: string; message?: string };
  return { status: res.status, code: err.code, message: err.message ?? "" };
}

/** The same request in either format, built from the generated schema. */
function send<S extends DescMessage>(method: string, schema: S, init: MessageInitShape<S>, format: Format): Promise<Answer> {
  const msg = create(schema, init);
  return post(method, format === "binary" ? toBinary(schema, msg) : toJsonString(schema, msg), format);
}

const UPLOAD_ID = "0123456789abcdef0123456789abcdef"; // well-formed, so only the field under test is wrong

/** planUpload's request (grpc-js shapes: int64 as numbers, enums by name) as the generated schema takes it. */
function connectUpload(req: ReturnType<typeof planUpload>["request"]): MessageInitShape<typeof CreateUploadRequestSchema> {
  return {
    path: req.path,
    size: BigInt(req.size),
    contentHash: req.contentHash,
    contentHashKind: ContentHashKind.BLAKE3,
    chunkCount: BigInt(req.chunkCount),
    chunks: req.chunks.map((c) => ({ size: BigInt(c.size), hash: c.hash })),
  };
}

beforeAll(async () => {
  server = await startDriveServer();
  token = server.adminToken;
  const res = await fetch(`${server.url}/drive.v1.UserService/CreateUser`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ name: "mallory" }),
  });
  token = ((await res.json()) as { token: string }).token;
});
afterAll(async () => {
  await server?.stop();
});

for (const format of ["json", "binary"] as const) {
  describe(`malformed strings are InvalidArgument, never a 500 (Connect ${format})`, () => {
    const cases: Array<[string, () => Promise<Answer>]> = [
      ["a NUL in a ListFiles prefix", () => send("FileService/ListFiles", ListFilesRequestSchema, { prefix: "a\0b" }, format)],
      ["a NUL in a page token", () => send("FileService/ListFiles", ListFilesRequestSchema, { pageToken: "AA\0" }, format)],
      ["a page token that decodes to a NUL", () => send("FileService/ListFiles", ListFilesRequestSchema, { pageToken: Buffer.from("a\0b").toString("base64url") }, format)],
      ["a page token that is not base64url", () => send("FileService/ListFiles", ListFilesRequestSchema, { pageToken: "a+b/c=" }, format)],
      ["a ListVersions page token of another kind", () => send("FileService/ListVersions", ListVersionsRequestSchema, { path: "a", pageToken: Buffer.from("a").toString("base64url") }, format)],
      ["a NUL in an upload id", () => send("UploadService/PresignParts", PresignPartsRequestSchema, { uploadId: "ab\0cd", partNumbers: [1] }, format)],
      ["a NUL in an upload id (complete)", () => send("UploadService/CompleteUpload", CompleteUploadRequestSchema, { uploadId: "\0" }, format)],
      ["a NUL in an upload id (abort)", () => send("UploadService/AbortUpload", AbortUploadRequestSchema, { uploadId: "x\0" }, format)],
      ["a NUL in an ETag", () => send("UploadService/ReportParts", ReportPartsRequestSchema, { uploadId: UPLOAD_ID, parts: [{ partNumber: 1, etag: "abc\0def" }] }, format)],
      ["a newline in an ETag", () => send("UploadService/ReportParts", ReportPartsRequestSchema, { uploadId: UPLOAD_ID, parts: [{ partNumber: 1, etag: "abc\ndef" }] }, format)],
      ["an escape sequence in a path", () => send("FileService/Stat", StatRequestSchema, { path: "a\u001b[31mred" }, format)],
      ["a C1 control in a prefix", () => send("FileService/ListFiles", ListFilesRequestSchema, { prefix: "a\u009bb" }, format)],
    ];
    it.each(cases)("%s", async (_what, call) => {
      const answer = await call();
      expect(answer, JSON.stringify(answer)).toMatchObject({ status: 400, code: "invalid_argument" });
    });
  });

  describe(`oversized fields are InvalidArgument (Connect ${format})`, () => {
    it("a 1 MB ETag", async () => {
      const a = await send("UploadService/ReportParts", ReportPartsRequestSchema, { uploadId: UPLOAD_ID, parts: [{ partNumber: 1, etag: "e".repeat(1_000_000) }] }, format);
      expect(a).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/etag is over 128 characters/) });
    });
    it("a 100 KB path", async () => {
      const a = await send("FileService/Stat", StatRequestSchema, { path: "p".repeat(100_000) }, format);
      expect(a).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/over 4096 bytes/) });
    });
    it("a 100 KB prefix", async () => {
      const a = await send("FileService/ListFiles", ListFilesRequestSchema, { prefix: "p".repeat(100_000) }, format);
      expect(a).toMatchObject({ code: "invalid_argument" });
    });
    it("a 100 KB page token", async () => {
      const a = await send("FileService/ListFiles", ListFilesRequestSchema, { pageToken: "A".repeat(100_000) }, format);
      expect(a).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/page_token is over/) });
    });
    it("a 100 KB upload id, quoted in no answer", async () => {
      for (const method of ["PresignParts", "ReportParts", "CompleteUpload", "AbortUpload"] as const) {
        const a = await post(`UploadService/${method}`, format === "json" ? JSON.stringify({ uploadId: "u".repeat(100_000) }) : toBinary(CompleteUploadRequestSchema, create(CompleteUploadRequestSchema, { uploadId: "u".repeat(100_000) })), format);
        expect(a, method).toMatchObject({ code: "invalid_argument" });
        expect(a.message.length, method).toBeLessThan(200);
      }
    });
    it("a 100 KB user name, quoted in no answer", async () => {
      const res = await fetch(`${server.url}/drive.v1.UserService/CreateUser`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${server.adminToken}` },
        body: JSON.stringify({ name: "N".repeat(100_000) }),
      });
      const err = (await res.json()) as { code: string; message: string };
      expect(err.code).toBe("invalid_argument");
      expect(err.message.length).toBeLessThan(200);
    });
    it("an upload id that is well-formed but unknown is NotFound, quoted short", async () => {
      const a = await send("UploadService/CompleteUpload", CompleteUploadRequestSchema, { uploadId: "u".repeat(64) }, format);
      expect(a).toMatchObject({ code: "not_found" });
      expect(a.message.length).toBeLessThan(200);
    });
    it("10,001 part numbers, 10,001 reports and 8,193 chunks (one past a page)", async () => {
      const many = Array.from({ length: 10_001 }, (_, i) => (i % 10_000) + 1);
      expect(await send("UploadService/PresignParts", PresignPartsRequestSchema, { uploadId: UPLOAD_ID, partNumbers: many }, format)).toMatchObject({
        code: "invalid_argument",
        message: expect.stringMatching(/part_numbers has 10001 entries/),
      });
      expect(
        await send("UploadService/ReportParts", ReportPartsRequestSchema, { uploadId: UPLOAD_ID, parts: many.map((n) => ({ partNumber: n, etag: "e" })) }, format),
      ).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/parts has 10001 entries/) });
      // The caps are per call, 1,000 (proto/drive/v1/upload.proto), far under an upload's 10,000 parts: one past them.
      const oneOver = many.slice(0, 1001);
      expect(await send("UploadService/PresignParts", PresignPartsRequestSchema, { uploadId: UPLOAD_ID, partNumbers: oneOver }, format)).toMatchObject({
        code: "invalid_argument",
        message: expect.stringMatching(/part_numbers has 1001 entries, over the 1000 maximum/),
      });
      expect(
        await send("UploadService/ReportParts", ReportPartsRequestSchema, { uploadId: UPLOAD_ID, parts: oneOver.map((n) => ({ partNumber: n, etag: "e" })) }, format),
      ).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/parts has 1001 entries, over the 1000 maximum/) });
      // Chunk lists now travel in pages of at most 8,192 (CreateUpload's first, DeclareChunks' the rest), so
      // the cap on a repeated chunks field is the page, no longer the 10,000-part limit. The request is
      // otherwise valid (1 MiB chunks that add up to size, chunk_count set), so the page cap alone refuses it.
      const over = MAX_CHUNKS_PER_PAGE + 1;
      const chunks = Array.from({ length: over }, () => ({ size: BigInt(MiB), hash: randomBytes(32) }));
      const pageCap = new RegExp(`chunks has ${over} entries, over the ${MAX_CHUNKS_PER_PAGE} maximum`);
      expect(
        await send(
          "UploadService/CreateUpload",
          CreateUploadRequestSchema,
          { path: "many.bin", size: BigInt(over * MiB), contentHash: randomBytes(32), contentHashKind: ContentHashKind.BLAKE3, chunkCount: BigInt(over), chunks },
          format,
        ),
      ).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(pageCap) });
      // DeclareChunks carries the other pages under the same cap, refused before the upload is looked up (no not_found).
      expect(
        await send("UploadService/DeclareChunks", DeclareChunksRequestSchema, { uploadId: UPLOAD_ID, firstChunk: BigInt(MAX_CHUNKS_PER_PAGE), chunks }, format),
      ).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(pageCap) });
    });
    it("part numbers out of range", async () => {
      for (const n of [0, -1, 10_001]) {
        expect(await send("UploadService/PresignParts", PresignPartsRequestSchema, { uploadId: UPLOAD_ID, partNumbers: [n] }, format)).toMatchObject({ code: "invalid_argument" });
        expect(await send("UploadService/ReportParts", ReportPartsRequestSchema, { uploadId: UPLOAD_ID, parts: [{ partNumber: n, etag: "e" }] }, format)).toMatchObject({ code: "invalid_argument" });
      }
    });
    it("hashes of any length but 32 bytes", async () => {
      // Two chunks, so that any content hash of 32 bytes is valid (a file of one chunk must have that
      // chunk's hash): only the hash under test is wrong.
      const upload = (contentHash: Uint8Array, chunkHash: Uint8Array) => ({
        path: "h.bin",
        size: BigInt(MIN_CHUNK_SIZE + 10),
        contentHash,
        contentHashKind: ContentHashKind.BLAKE3,
        chunkCount: 2n,
        chunks: [
          { size: BigInt(MIN_CHUNK_SIZE), hash: randomBytes(32) },
          { size: 10n, hash: chunkHash },
        ],
      });
      for (const bad of [new Uint8Array(0), randomBytes(31), randomBytes(33), randomBytes(100_000)]) {
        expect(await send("UploadService/CreateUpload", CreateUploadRequestSchema, upload(bad, randomBytes(32)), format)).toMatchObject({
          code: "invalid_argument",
          message: expect.stringMatching(/content_hash must be 32 bytes/),
        });
        expect(await send("UploadService/CreateUpload", CreateUploadRequestSchema, upload(randomBytes(32), bad), format)).toMatchObject({
          code: "invalid_argument",
          message: expect.stringMatching(/chunk 1 hash must be 32 bytes/),
        });
      }
    });
    it("a negative page size", async () => {
      expect(await send("FileService/ListFiles", ListFilesRequestSchema, { pageSize: -1 }, format)).toMatchObject({ code: "invalid_argument" });
    });
  });
}

describe("JSON that cannot be decoded", () => {
  it("is InvalidArgument, and its message quotes the bad value short", async () => {
    const huge = "9".repeat(200_000);
    const a = await post("UploadService/CreateUpload", JSON.stringify({ path: "a.bin", size: huge }), "json");
    expect([a.status, a.code]).toEqual([400, "invalid_argument"]);
    expect(a.message).toContain("size");
    expect(a.message.length).toBeLessThan(700);
    expect(a.message).toContain("200");
  });
});

describe("strings that are not Unicode are InvalidArgument", () => {
  it("a lone surrogate in Connect JSON, in a path, a prefix, an ETag and an upload id", async () => {
    // JSON's \ud800 escape: valid JSON, but no UTF-8 exists for it.
    const cases: Array<[string, string]> = [
      ["FileService/Stat", `{"path":"a\\ud800b"}`],
      ["FileService/ListFiles", `{"prefix":"a\\udfffb"}`],
      ["FileService/ListFiles", `{"pageToken":"\\ud800"}`],
      ["UploadService/ReportParts", `{"uploadId":"${UPLOAD_ID}","parts":[{"partNumber":1,"etag":"\\ud800"}]}`],
      ["UploadService/AbortUpload", `{"uploadId":"\\ud800"}`],
      // An empty file, valid but for its path: its content hash is the BLAKE3 of no bytes.
      ["UploadService/CreateUpload", `{"path":"\\udc00.bin","size":"0","contentHash":"${blake3(Buffer.alloc(0)).toString("base64")}","contentHashKind":"CONTENT_HASH_KIND_BLAKE3"}`],
    ];
    for (const [method, body] of cases) expect(await post(method, body, "json"), body).toMatchObject({ status: 400, code: "invalid_argument" });
  });

  it("invalid UTF-8 in binary protobuf strings", async () => {
    // Field 1 (path, prefix or upload_id), length-delimited, with bytes that are not UTF-8.
    for (const bytes of [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80] /* an encoded surrogate */, [0x61, 0x80]]) {
      const body = Uint8Array.from([0x0a, bytes.length, ...bytes]);
      for (const method of ["FileService/Stat", "FileService/ListFiles", "UploadService/AbortUpload"]) {
        expect(await post(method, body, "binary"), `${method} ${bytes}`).toMatchObject({ status: 400, code: "invalid_argument" });
      }
    }
  });
});

describe("the same over gRPC", () => {
  /** One raw gRPC unary call over HTTP/2; returns grpc-status and grpc-message. */
  async function grpcCall(method: string, message: Uint8Array): Promise<{ status: number; message: string }> {
    const session = http2.connect(server.url);
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": `/drive.v1.${method}`,
        "content-type": "application/grpc",
        te: "trailers",
        authorization: `Bearer ${token}`,
      });
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt32BE(message.length, 1);
      frame.set(message, 5);
      stream.end(frame);
      const meta: Record<string, string> = {};
      const keep = (h: http2.IncomingHttpHeaders) => {
        for (const k of ["grpc-status", "grpc-message"]) if (h[k] !== undefined) meta[k] = String(h[k]);
      };
      stream.on("response", keep);
      stream.on("trailers", keep);
      stream.resume();
      await new Promise<void>((resolve, reject) => {
        stream.on("close", resolve);
        stream.on("error", reject);
      });
      return { status: Number(meta["grpc-status"]), message: decodeURIComponent(meta["grpc-message"] ?? "") };
    } finally {
      session.close();
    }
  }

  it("refuses invalid UTF-8, a NUL and a 100 KB upload id with InvalidArgument, quoted short", async () => {
    const INVALID_ARGUMENT = 3;
    const cases: Array<[string, Uint8Array]> = [
      ["FileService/Stat", Uint8Array.from([0x0a, 2, 0xc3, 0x28])],
      ["FileService/ListFiles", toBinary(ListFilesRequestSchema, create(ListFilesRequestSchema, { prefix: "a\0" }))],
      ["UploadService/ReportParts", toBinary(ReportPartsRequestSchema, create(ReportPartsRequestSchema, { uploadId: UPLOAD_ID, parts: [{ partNumber: 1, etag: "\0" }] }))],
      ["UploadService/CompleteUpload", toBinary(CompleteUploadRequestSchema, create(CompleteUploadRequestSchema, { uploadId: "u".repeat(100_000) }))],
    ];
    for (const [method, body] of cases) {
      const answer = await grpcCall(method, body);
      expect(answer, method).toMatchObject({ status: INVALID_ARGUMENT });
      expect(answer.message.length, method).toBeLessThan(200);
    }
  });
});

describe("paths and prefixes that are fine still work", () => {
  it("a prefix ending mid-segment or in a slash, and a non-NFC prefix", async () => {
    for (const prefix of ["a", "dir/", "dir/su", "e\u0301", "ファ"]) {
      expect(await send("FileService/ListFiles", ListFilesRequestSchema, { prefix }, "binary")).toMatchObject({ status: 200 });
    }
  });
  it("an empty ETag is recorded, not refused, so the rest of its batch is kept", async () => {
    const a = await send("UploadService/ReportParts", ReportPartsRequestSchema, { uploadId: UPLOAD_ID, parts: [{ partNumber: 1, etag: "" }] }, "json");
    expect(a).toMatchObject({ code: "not_found" }); // got past the checks to the lookup
  });
});

describe("per-user limits on open uploads", () => {
  it("refuses 50 CreateUploads of 10,000 × 5 GiB past the declared-bytes cap, naming it", async () => {
    // The largest file the rules allow, in 4 MiB chunks, the biggest there are: 12,800,000 of them.
    // CreateUpload carries the first page; the server checks that the chunks still to come can hold
    // the rest of the file (here, exactly: all of them 4 MiB), so each request is valid but for the cap.
    const chunkCount = MAX_FILE_SIZE / MAX_CHUNK_SIZE;
    expect(Number.isInteger(chunkCount)).toBe(true);
    const answers: Answer[] = [];
    for (let i = 0; i < 50; i++) {
      const init = {
        path: `huge-${i}.bin`,
        size: BigInt(MAX_FILE_SIZE),
        contentHash: randomBytes(32), // BLAKE3 of bytes no one has: the server cannot check it
        contentHashKind: ContentHashKind.BLAKE3,
        chunkCount: BigInt(chunkCount),
        chunks: Array.from({ length: MAX_CHUNKS_PER_PAGE }, () => ({ size: BigInt(MAX_CHUNK_SIZE), hash: randomBytes(32) })),
        presignWindow: 1,
      };
      answers.push(await send("UploadService/CreateUpload", CreateUploadRequestSchema, init, "binary"));
    }
    // The default, 64 TiB, holds one largest file (48.8 TiB) and not two.
    expect(answers[0]).toMatchObject({ status: 200 });
    for (const a of answers.slice(1)) {
      expect(a).toMatchObject({ status: 429, code: "resource_exhausted" });
      expect(a.message).toMatch(/--max-open-upload-bytes/);
      expect(a.message).toMatch(/64 TiB/);
    }
  });
});

describe("ListVersions pages", () => {
  it("walks every version in order with page tokens, and drive versions prints them all", async () => {
    const { runDrive } = await import("../support/drive-cli.js");
    // Two contents, alternated: each CreateUpload commits at once (the content is stored).
    const { writeFile, mkdtemp, rm } = await import("node:fs/promises");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const dir = await mkdtemp(join(tmpdir(), "drive-versions-"));
    try {
      const contents = [randomBytes(100), randomBytes(200)];
      for (const [i, c] of contents.entries()) {
        await writeFile(join(dir, `v${i}`), c);
        const push = await runDrive(["push", `v${i}`, "v.bin"], { server: server.url, token, cwd: dir });
        expect(push.code, push.stderr).toBe(0);
      }
      // The same uploads as the pushes declared (BLAKE3 of the bytes, one chunk each), so the server finds them stored.
      const blobs = contents.map((c) => connectUpload(planUpload("v.bin", c).request));
      const total = 1005;
      for (let rev = 3; rev <= total; rev++) {
        // Revision 1 holds contents[0], 2 contents[1], 3 contents[0] again, and so on.
        const a = await send("UploadService/CreateUpload", CreateUploadRequestSchema, blobs[(rev + 1) % 2]!, "binary");
        expect(a.status).toBe(200);
      }

      const seen: number[] = [];
      let pageToken = "";
      let pages = 0;
      do {
        const res = await fetch(`${server.url}/drive.v1.FileService/ListVersions`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          body: JSON.stringify({ path: "v.bin", pageSize: 100, pageToken }),
        });
        const page = (await res.json()) as { versions?: Array<{ revision: string }>; nextPageToken?: string };
        expect(page.versions!.length).toBeLessThanOrEqual(100);
        seen.push(...page.versions!.map((v) => Number(v.revision)));
        pageToken = page.nextPageToken ?? "";
        pages++;
      } while (pageToken);
      expect(pages).toBe(11);
      expect(seen).toEqual(Array.from({ length: total }, (_, i) => total - i));

      // The default page is 1,000: the CLI must follow the token for the last five.
      const cli = await runDrive(["--json", "versions", "v.bin"], { server: server.url, token, cwd: dir });
      expect(cli.code, cli.stderr).toBe(0);
      expect(cli.lines.filter((l) => l.type === "version").map((l) => Number(l.revision))).toEqual(seen);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
