import http from "node:http";
import https from "node:https";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { ROOT } from "./drive-server.js";

/**
 * A stock gRPC peer for end-to-end tests: @grpc/grpc-js with the .proto files
 * loaded at run time by @grpc/proto-loader, sharing no code with the
 * connect-es stubs in gen/. If the server only worked with its own client,
 * these tests would say so.
 */

const PROTO_DIR = join(ROOT, "proto");
// google/protobuf/timestamp.proto is not a file anywhere here: protobufjs
// resolves google/protobuf/* imports from definitions bundled in its code,
// before any include path. Its folder (a few other well-known types as files)
// is there for whatever it does not bundle.
const WKT_DIR = dirname(createRequire(import.meta.url).resolve("protobufjs/package.json"));
const PROTO_FILES = ["drive/v1/types.proto", "drive/v1/user.proto", "drive/v1/file.proto", "drive/v1/upload.proto", "drive/v1/feed.proto"];

/** gRPC status codes, as numbers, for assertions that read like the proto docs. */
export const Status = grpc.status;

// camelCase fields, int64 as numbers (every size in the tests fits a double),
// bytes as Buffers, enums as their names, unset fields filled with defaults.
const LOAD_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR, WKT_DIR],
};

let loaded: grpc.GrpcObject | undefined;

/** The drive.v1 package, loaded once per test file. */
export function driveProtos(): grpc.GrpcObject {
  loaded ??= grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_FILES, LOAD_OPTIONS));
  return loaded;
}

type ServiceName = "UserService" | "FileService" | "UploadService" | "FeedService";

export interface DriveGrpc {
  users: grpc.Client;
  files: grpc.Client;
  uploads: grpc.Client;
  feed: grpc.Client;
  close(): void;
}

/** `http://127.0.0.1:7070` or `https://…` becomes the `host:port` target grpc-js expects. */
export function grpcTarget(serverUrl: string): string {
  return new URL(serverUrl).host;
}

export function plainCredentials(): grpc.ChannelCredentials {
  return grpc.credentials.createInsecure();
}

/** TLS trusting `rootCert` (PEM) alone, as a client pinned to a self-signed server would. */
export function tlsCredentials(rootCert: Buffer): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(rootCert);
}

/** Clients for the three services over one channel to `serverUrl`. */
export function connectGrpc(serverUrl: string, credentials?: grpc.ChannelCredentials): DriveGrpc {
  const creds = credentials ?? (new URL(serverUrl).protocol === "https:" ? grpc.credentials.createSsl() : plainCredentials());
  const v1 = (driveProtos().drive as grpc.GrpcObject).v1 as grpc.GrpcObject;
  const ctor = (name: ServiceName) => v1[name] as grpc.ServiceClientConstructor;
  const users = new (ctor("UserService"))(grpcTarget(serverUrl), creds);
  // Sharing the first client's channel: one HTTP/2 connection, like a real client.
  const shared = { channelOverride: users.getChannel() as grpc.Channel };
  const files = new (ctor("FileService"))(grpcTarget(serverUrl), creds, shared);
  const uploads = new (ctor("UploadService"))(grpcTarget(serverUrl), creds, shared);
  const feed = new (ctor("FeedService"))(grpcTarget(serverUrl), creds, shared);
  return { users, files, uploads, feed, close: () => users.close() };
}

/** Per-call metadata carrying `authorization: Bearer <token>`; no token, no header. */
export function bearer(token?: string): grpc.Metadata {
  const md = new grpc.Metadata();
  if (token !== undefined) md.set("authorization", `Bearer ${token}`);
  return md;
}

/**
 * One unary call as a promise. The deadline keeps a hung server from hanging
 * the test run; it never decides a result.
 */
export function unary<Res = Record<string, any>>(
  client: grpc.Client,
  method: string,
  request: Record<string, unknown>,
  metadata: grpc.Metadata,
): Promise<Res> {
  const fn = (client as unknown as Record<string, Function>)[method];
  if (typeof fn !== "function") throw new Error(`no method ${method} on this client`);
  return new Promise((resolve, reject) => {
    fn.call(client, request, metadata, { deadline: Date.now() + 60_000 }, (err: grpc.ServiceError | null, res: Res) =>
      err ? reject(err) : resolve(res),
    );
  });
}

/** The gRPC error a call failed with; fails the test when it succeeded. */
export async function grpcError(call: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await call;
  } catch (err) {
    if (typeof (err as grpc.ServiceError).code === "number") return err as grpc.ServiceError;
    throw err;
  }
  throw new Error("the call succeeded; it should have failed");
}

/**
 * The status message as the server wrote it. connect-es percent-encodes
 * grpc-message with encodeURIComponent, and grpc-js decodes it with
 * decodeURI, which leaves reserved characters (":", ",", "/") escaped.
 */
export function messageOf(err: grpc.ServiceError): string {
  try {
    return decodeURIComponent(err.details);
  } catch {
    return err.details;
  }
}

// google.rpc.Status, as the gRPC richer error model defines it (google/rpc/status.proto, which
// protobufjs does not bundle), with google.protobuf.Any's two fields: what grpc-status-details-bin carries.
const STATUS_PROTO = `syntax = "proto3"; package google.rpc;
message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
message Any { string type_url = 1; bytes value = 2; }`;
let errorTypes: { status: protobuf.Type; info: protobuf.Type } | undefined;

/**
 * The drive.v1.ErrorInfo of a failed call, decoded the way any gRPC peer
 * reads the richer error model: the grpc-status-details-bin trailer is a
 * google.rpc.Status whose details are Anys. undefined when there is none.
 */
export function errorInfoOf(err: grpc.ServiceError): Record<string, any> | undefined {
  if (!errorTypes) {
    const root = protobuf.parse(STATUS_PROTO, new protobuf.Root(), { keepCase: false }).root;
    protobuf.loadSync(join(PROTO_DIR, "drive/v1/errors.proto"), root);
    errorTypes = { status: root.lookupType("google.rpc.Status"), info: root.lookupType("drive.v1.ErrorInfo") };
  }
  const [bin] = err.metadata?.get("grpc-status-details-bin") ?? [];
  if (!Buffer.isBuffer(bin)) return undefined;
  const status = errorTypes.status.toObject(errorTypes.status.decode(bin), { longs: Number }) as {
    code: number;
    details?: Array<{ typeUrl: string; value: Uint8Array }>;
  };
  const any = status.details?.find((d) => d.typeUrl === "type.googleapis.com/drive.v1.ErrorInfo");
  if (!any) return undefined;
  return errorTypes.info.toObject(errorTypes.info.decode(any.value), { longs: Number, enums: String, oneofs: true, defaults: true });
}

/** Message shapes as proto-loader hands them over with LOAD_OPTIONS. */
export interface FileInfoMsg {
  path: string;
  size: number;
  contentHash: Buffer;
  revision: number;
  modifiedAt: { seconds: number; nanos: number } | null;
  deleted: boolean;
  contentHashKind: string;
}
export interface ChunkMsg {
  size: number;
  hash: Buffer;
  offset: number;
  storedOffset: number;
  storedSize: number;
  codec: string;
}
export interface PartStatusMsg {
  partNumber: number;
  state: string;
  storedEtag: string;
  firstChunk: number;
  chunkCount: number;
  size: number;
  serverCopy: boolean;
}
export interface PresignedPartMsg {
  partNumber: number;
  url: string;
  headers: Record<string, string>;
  maxSize: number;
}
export interface CreateUploadMsg {
  committed: FileInfoMsg | null;
  uploadId: string;
  parts: PartStatusMsg[];
  urls: PresignedPartMsg[];
  urlExpiresInSeconds: number;
  resumed: boolean;
  chunksDeclared: number;
}
export interface DeclareChunksMsg {
  chunksDeclared: number;
  parts: PartStatusMsg[];
  urls: PresignedPartMsg[];
  urlExpiresInSeconds: number;
}
export interface GetDownloadMsg {
  file: FileInfoMsg;
  revision: number;
  url: string;
  urlExpiresInSeconds: number;
  chunks: ChunkMsg[];
  chunkCount: number;
  storedSize: number;
}

/** Chunks per CreateUpload or DeclareChunks page (proto/drive/v1/upload.proto). */
export const CHUNKS_PER_PAGE = 8192;

export const blake3 = (data: Buffer | string): Buffer => new Blake3Hasher().update(data).digestBuffer();

/**
 * A file cut into `chunkSize` chunks (the last one shorter), each hashed
 * with BLAKE3, and the file's own BLAKE3: what CreateUpload declares. The
 * server checks chunk sizes, not where a chunker would cut, so fixed sizes
 * do for a peer that has no FastCDC of its own (256 KiB to 4 MiB a chunk,
 * the last one shorter). `request` carries the first page; `chunks` is the
 * whole list and `bodies` each chunk's bytes.
 */
export function planUpload(path: string, data: Buffer, chunkSize = 1024 * 1024) {
  const chunks: Array<{ size: number; hash: Buffer }> = [];
  const bodies: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += chunkSize) {
    const body = data.subarray(offset, Math.min(offset + chunkSize, data.length));
    bodies.push(body);
    chunks.push({ size: body.length, hash: blake3(body) });
  }
  const request = {
    path,
    size: data.length,
    contentHash: blake3(data),
    contentHashKind: "CONTENT_HASH_KIND_BLAKE3",
    chunkCount: chunks.length,
    chunks: chunks.slice(0, CHUNKS_PER_PAGE),
  };
  return { request, chunks, bodies };
}

/** The bytes of a planned part: its chunks' plaintext, from the file. */
export function partBody(data: Buffer, chunks: ReadonlyArray<{ size: number }>, part: PartStatusMsg): Buffer {
  let start = 0;
  for (let i = 0; i < part.firstChunk; i++) start += chunks[i]!.size;
  return data.subarray(start, start + part.size);
}

export interface HttpReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  httpVersion: string;
  body: Buffer;
}

export interface HttpRequestOptions {
  method: string;
  headers?: http.OutgoingHttpHeaders;
  body?: Buffer | string;
  /** Trusted CA for https URLs. */
  ca?: Buffer;
}

/**
 * One HTTP/1.1 request on a fresh keep-alive connection, as an S3 SDK would
 * send it to a presigned URL. Keep-alive matters: a server that refuses a
 * PUT before reading its body drains the body then, while after
 * `Connection: close` it may close under our upload and lose its answer.
 */
export function httpRequest(rawUrl: string, opts: HttpRequestOptions): Promise<HttpReply> {
  const url = new URL(rawUrl);
  const secure = url.protocol === "https:";
  const agent = secure ? new https.Agent({ keepAlive: true, ca: opts.ca }) : new http.Agent({ keepAlive: true });
  return new Promise<HttpReply>((resolve, reject) => {
    const req = (secure ? https : http).request(url, { method: opts.method, headers: opts.headers, agent }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, httpVersion: res.httpVersion, body: Buffer.concat(parts) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(opts.body);
  }).finally(() => agent.destroy());
}

/** PUTs one part to a presigned URL with the headers the server asked for. */
export function putPart(part: PresignedPartMsg | { url: string; headers?: Record<string, string> }, body: Buffer): Promise<HttpReply> {
  return httpRequest(part.url, {
    method: "PUT",
    headers: { ...part.headers, "content-length": String(body.length) },
    body,
  });
}
