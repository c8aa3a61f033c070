import { randomBytes } from "node:crypto";
import http2 from "node:http2";
import { create, toBinary, toJsonString, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ListFilesRequestSchema, ListVersionsRequestSchema, StatRequestSchema } from "../../gen/drive/v1/file_pb.js";
import {
  AbortUploadRequestSchema,
  CompleteUploadRequestSchema,
  CreateUploadRequestSchema,
  PresignPartsRequestSchema,
  ReportPartsRequestSchema,
} from "../../gen/drive/v1/upload_pb.js";
import { contentHash } from "../../shared/rules/content-hash.js";
import { GiB } from "../../shared/rules/part-rules.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";

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
    it("10,001 part numbers, 10,001 reports and 10,001 chunks", async () => {
      const many = Array.from({ length: 10_001 }, (_, i) => (i % 10_000) + 1);
      expect(await send("UploadService/PresignParts", PresignPartsRequestSchema, { uploadId: UPLOAD_ID, partNumbers: many }, format)).toMatchObject({
        code: "invalid_argument",
        message: expect.stringMatching(/part_numbers has 10001 entries/),
      });
      expect(
        await send("UploadService/ReportParts", ReportPartsRequestSchema, { uploadId: UPLOAD_ID, parts: many.map((n) => ({ partNumber: n, etag: "e" })) }, format),
      ).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/parts has 10001 entries/) });
      const chunks = many.map(() => ({ size: 5n * BigInt(2 ** 20), hash: randomBytes(32) }));
      expect(
        await send("UploadService/CreateUpload", CreateUploadRequestSchema, { path: "many.bin", size: 10_001n * 5n * BigInt(2 ** 20), contentHash: randomBytes(32), chunks }, format),
      ).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/chunks has 10001 entries/) });
    });
    it("part numbers out of range", async () => {
      for (const n of [0, -1, 10_001]) {
        expect(await send("UploadService/PresignParts", PresignPartsRequestSchema, { uploadId: UPLOAD_ID, partNumbers: [n] }, format)).toMatchObject({ code: "invalid_argument" });
        expect(await send("UploadService/ReportParts", ReportPartsRequestSchema, { uploadId: UPLOAD_ID, parts: [{ partNumber: n, etag: "e" }] }, format)).toMatchObject({ code: "invalid_argument" });
      }
    });
    it("hashes of any length but 32 bytes", async () => {
      const chunk = (hash: Uint8Array) => ({ size: 10n, hash });
      for (const bad of [new Uint8Array(0), randomBytes(31), randomBytes(33), randomBytes(100_000)]) {
        const good = [chunk(randomBytes(32))];
        expect(await send("UploadService/CreateUpload", CreateUploadRequestSchema, { path: "h.bin", size: 10n, contentHash: bad, chunks: good }, format)).toMatchObject({
          code: "invalid_argument",
          message: expect.stringMatching(/content_hash must be 32 bytes/),
        });
        expect(await send("UploadService/CreateUpload", CreateUploadRequestSchema, { path: "h.bin", size: 10n, contentHash: randomBytes(32), chunks: [chunk(bad)] }, format)).toMatchObject({
          code: "invalid_argument",
          message: expect.stringMatching(/hash must be 32 bytes/),
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
      ["UploadService/CreateUpload", `{"path":"\\udc00.bin","size":"0","contentHash":"${contentHash([]).toString("base64")}"}`],
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
    const answers: Answer[] = [];
    for (let i = 0; i < 50; i++) {
      const chunks = Array.from({ length: 10_000 }, () => ({ size: 5 * GiB, hash: randomBytes(32) }));
      const init = {
        path: `huge-${i}.bin`,
        size: BigInt(10_000 * 5 * GiB),
        contentHash: contentHash(chunks),
        chunks: chunks.map((c) => ({ size: BigInt(c.size), hash: c.hash })),
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
      const blobs = await Promise.all(
        contents.map(async (c) => {
          const { Blake3Hasher } = await import("@napi-rs/blake-hash");
          const h = new Blake3Hasher();
          h.update(c);
          const chunks = [{ size: c.length, hash: h.digestBuffer() }];
          return { size: BigInt(c.length), contentHash: contentHash(chunks), chunks: chunks.map((x) => ({ size: BigInt(x.size), hash: x.hash })) };
        }),
      );
      const total = 1005;
      for (let rev = 3; rev <= total; rev++) {
        // Revision 1 holds contents[0], 2 contents[1], 3 contents[0] again, and so on.
        const a = await send("UploadService/CreateUpload", CreateUploadRequestSchema, { path: "v.bin", ...blobs[(rev + 1) % 2]! }, "binary");
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
