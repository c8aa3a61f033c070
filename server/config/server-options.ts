import { resolve } from "node:path";
import type { S3StoreOptions } from "../blob/s3/s3-store.js";
import type { ConnectionLimits } from "../http/listen.js";
import type { LogLevel } from "../log.js";
import { parseByteSize } from "./byte-size.js";
import { parseDuration } from "./duration.js";

/**
 * Every setting of `drive server`, documented once. The command's flags,
 * their help and the environment variables are all derived from this table.
 * Precedence: flag, then environment, then default.
 */
export const serverOptions = [
  { key: "listen", flag: "--listen", env: "DRIVE_LISTEN", default: "127.0.0.1:7070", help: "address to serve on, HOST:PORT (port 0 picks a free one)" },
  { key: "dataDir", flag: "--data-dir", env: "DRIVE_DATA_DIR", default: "./drive-data", help: "folder for admin.token and, in the embedded default, PostgreSQL and the local blob store" },
  { key: "databaseUrl", flag: "--database-url", env: "DRIVE_DATABASE_URL", default: null, help: "PostgreSQL URL; unset runs a private PostgreSQL in the data folder" },
  { key: "publicUrl", flag: "--public-url", env: "DRIVE_PUBLIC_URL", default: null, help: "URL clients reach this server on, for the blob URLs it serves (default: the URL each request came in on)" },
  { key: "tlsCert", flag: "--tls-cert", env: "DRIVE_TLS_CERT", default: null, help: "PEM certificate file; with --tls-key, serve TLS (HTTP/2 and HTTP/1.1 by ALPN)" },
  { key: "tlsKey", flag: "--tls-key", env: "DRIVE_TLS_KEY", default: null, help: "PEM private key file for --tls-cert" },
  { key: "urlTtl", flag: "--url-ttl", env: "DRIVE_URL_TTL", default: "5m", help: "lifetime of presigned URLs" },
  { key: "uploadTtl", flag: "--upload-ttl", env: "DRIVE_UPLOAD_TTL", default: "24h", help: "an upload that sees no call (create, presign, report) this long expires and is swept" },
  // Per-user limits on uploads in progress; over one, CreateUpload answers ResourceExhausted naming it.
  { key: "maxOpenUploads", flag: "--max-open-uploads", env: "DRIVE_MAX_OPEN_UPLOADS", default: "100", help: "most uploads one user may have open at once" },
  { key: "maxOpenUploadBytes", flag: "--max-open-upload-bytes", env: "DRIVE_MAX_OPEN_UPLOAD_BYTES", default: "64T", help: "most bytes one user's open uploads may declare in all (the default fits one largest file, 10,000 parts of 5 GiB)" },
  { key: "s3Endpoint", flag: "--s3-endpoint", env: "DRIVE_S3_ENDPOINT", default: null, help: "S3 endpoint, http(s)://host[:port]; set, blobs go to S3 (AWS, MinIO, Ceph RGW) instead of the data folder" },
  { key: "s3Bucket", flag: "--s3-bucket", env: "DRIVE_S3_BUCKET", default: "drive", help: "S3 bucket, created if missing" },
  { key: "s3AccessKey", flag: "--s3-access-key", env: "DRIVE_S3_ACCESS_KEY", default: null, help: "S3 access key id" },
  { key: "s3SecretKey", flag: "--s3-secret-key", env: "DRIVE_S3_SECRET_KEY", default: null, help: "S3 secret key (prefer the environment: flags show in ps)" },
  { key: "s3Region", flag: "--s3-region", env: "DRIVE_S3_REGION", default: "us-east-1", help: "S3 region the requests are signed for" },
  { key: "s3PathStyle", flag: "--s3-path-style", env: "DRIVE_S3_PATH_STYLE", default: "auto", help: "true: http://host/bucket/key; false: http://bucket.host/key; auto: false for AWS, true elsewhere" },
  { key: "s3PublicEndpoint", flag: "--s3-public-endpoint", env: "DRIVE_S3_PUBLIC_ENDPOINT", default: null, help: "S3 endpoint as clients reach it, when it differs from --s3-endpoint (containers); presigned URLs use it" },
  { key: "s3Sse", flag: "--s3-sse", env: "DRIVE_S3_SSE", default: "none", help: "server-side encryption at rest: none or AES256 (SSE-S3); the server checks the store takes it at start" },
  { key: "journalRetention", flag: "--journal-retention", env: "DRIVE_JOURNAL_RETENTION", default: "30d", help: "change-feed entries older than this are removed; a cursor from before them gets CURSOR_RESET and lists again" },
  { key: "headerTimeout", flag: "--header-timeout", env: "DRIVE_HEADER_TIMEOUT", default: "30s", help: "a connection that has not sent a whole request head (after its TLS handshake, HTTP/2 preface) this long is closed" },
  { key: "idleTimeout", flag: "--idle-timeout", env: "DRIVE_IDLE_TIMEOUT", default: "65s", help: "a connection with no request in flight and no traffic this long is closed (above a load balancer's own, 60s for most)" },
  { key: "pingTimeout", flag: "--ping-timeout", env: "DRIVE_PING_TIMEOUT", default: "20s", help: "an HTTP/2 connection that is idle with streams open is pinged instead, and cut if no answer comes this long" },
  { key: "requestTimeout", flag: "--request-timeout", env: "DRIVE_REQUEST_TIMEOUT", default: "10m", help: "a request's head and body (a part PUT, too) must arrive within this" },
  { key: "maxConnections", flag: "--max-connections", env: "DRIVE_MAX_CONNECTIONS", default: "5000", help: "connections beyond this many are refused (keep below the process's open-file limit)" },
  { key: "rpcMaxBytes", flag: "--rpc-max-bytes", env: "DRIVE_RPC_MAX_BYTES", default: "4MiB", help: "largest RPC message accepted, after decompression (see proto/drive/v1/upload.proto for the figure)" },
  { key: "shutdownTimeout", flag: "--shutdown-timeout", env: "DRIVE_SHUTDOWN_TIMEOUT", default: "10s", help: "on SIGTERM or SIGINT, calls in flight get this long to finish before they are cut" },
  { key: "startupTimeout", flag: "--startup-timeout", env: "DRIVE_STARTUP_TIMEOUT", default: "30s", help: "how long the object store and PostgreSQL each get to answer at start; past it the server exits 7, naming which" },
  { key: "logLevel", flag: "--log-level", env: "DRIVE_LOG_LEVEL", default: "info", help: "debug, info, warn or error" },
] as const;

export type ServerOptionKey = (typeof serverOptions)[number]["key"];
export type RawServerOptions = Partial<Record<ServerOptionKey, string>>;

/** Settings after defaults and validation; code further in never sees undefined. */
export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly databaseUrl: string | null;
  readonly publicUrl: string | null;
  readonly tls: { certFile: string; keyFile: string } | null;
  readonly urlTtlSeconds: number;
  readonly uploadTtlMs: number;
  /** Journal entries older than this are trimmed (server/journal/trim-journal.ts). */
  readonly journalRetentionMs: number;
  readonly limits: UploadLimits;
  /** Bound on each start-up step that waits on a dependency (store probe, PostgreSQL connect, migrations). */
  readonly startupTimeoutMs: number;
  readonly logLevel: LogLevel;
  readonly connectionLimits: ConnectionLimits;
  /** Largest RPC message, after decompression (connect-node's readMaxBytes). */
  readonly rpcMaxBytes: number;
  /** How long calls in flight may take to finish at shutdown. */
  readonly shutdownTimeoutMs: number;
  /** null: blobs live on local disk in the data folder. */
  readonly s3: S3Settings | null;
}

/** Per-user caps on open uploads (see the options above). */
export interface UploadLimits {
  readonly openUploads: number;
  readonly openUploadBytes: number;
}

/** What the S3 store is opened with (documented there), as settings give it. */
export type S3Settings = Readonly<Omit<S3StoreOptions, "agent">>;

/** Merges flags over environment over defaults, then validates once. */
export function resolveServerConfig(flags: RawServerOptions, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const raw = {} as Record<ServerOptionKey, string | null>;
  for (const o of serverOptions) raw[o.key] = flags[o.key] ?? env[o.env] ?? o.default;
  const need = (k: ServerOptionKey) => raw[k] as string;

  const listen = /^(.*):(\d+)$/.exec(need("listen"));
  if (!listen) throw new Error(`--listen must be HOST:PORT, not ${JSON.stringify(raw.listen)}`);
  const port = Number(listen[2]);
  if (port > 65535) throw new Error(`--listen port ${port} is out of range`);

  if (Boolean(raw.tlsCert) !== Boolean(raw.tlsKey)) throw new Error("--tls-cert and --tls-key go together");
  const logLevel = need("logLevel");
  if (!["debug", "info", "warn", "error"].includes(logLevel)) throw new Error(`--log-level must be debug, info, warn or error`);
  if (raw.publicUrl && !/^https?:\/\/[^/]+$/.test(raw.publicUrl.replace(/\/$/, ""))) {
    throw new Error(`--public-url must look like http://host:port, not ${JSON.stringify(raw.publicUrl)}`);
  }
  const urlTtlMs = parseDuration(need("urlTtl"));
  if (urlTtlMs < 1000 || urlTtlMs > 7 * 86_400_000) throw new Error("--url-ttl must be between 1s and 7d (S3's limit)");
  const uploadTtlMs = parseDuration(need("uploadTtl"));
  if (uploadTtlMs < 1000) throw new Error("--upload-ttl must be at least 1s");
  const duration = (k: ServerOptionKey, min: number) => {
    const ms = parseDuration(need(k));
    if (ms < min) throw new Error(`${flagOf(k)} must be at least ${min}ms`);
    return ms;
  };
  const maxConnections = Number(need("maxConnections"));
  if (!Number.isInteger(maxConnections) || maxConnections < 1) throw new Error("--max-connections must be a whole number, at least 1");
  const rpcMaxBytes = parseByteSize(need("rpcMaxBytes"));
  if (rpcMaxBytes < 64 * 1024) throw new Error("--rpc-max-bytes must be at least 64KiB");
  const openUploads = Number(need("maxOpenUploads"));
  if (!Number.isSafeInteger(openUploads) || openUploads < 1) throw new Error("--max-open-uploads must be a whole number, 1 or more");
  const openUploadBytes = parseByteSize(need("maxOpenUploadBytes"));
  if (openUploadBytes < 1) throw new Error("--max-open-upload-bytes must be at least 1");
  const startupTimeoutMs = parseDuration(need("startupTimeout"));
  if (startupTimeoutMs < 100) throw new Error("--startup-timeout must be at least 100ms");

  return {
    host: listen[1]!.replace(/^\[(.*)\]$/, "$1"),
    port,
    dataDir: resolve(need("dataDir")),
    databaseUrl: raw.databaseUrl || null,
    publicUrl: raw.publicUrl ? raw.publicUrl.replace(/\/$/, "") : null,
    tls: raw.tlsCert && raw.tlsKey ? { certFile: resolve(raw.tlsCert), keyFile: resolve(raw.tlsKey) } : null,
    urlTtlSeconds: Math.round(urlTtlMs / 1000),
    uploadTtlMs,
    journalRetentionMs: duration("journalRetention", 1000),
    limits: { openUploads, openUploadBytes },
    startupTimeoutMs,
    logLevel: logLevel as LogLevel,
    connectionLimits: {
      headerTimeoutMs: duration("headerTimeout", 100),
      idleTimeoutMs: duration("idleTimeout", 100),
      pingTimeoutMs: duration("pingTimeout", 100),
      requestTimeoutMs: duration("requestTimeout", 100),
      maxConnections,
    },
    rpcMaxBytes,
    shutdownTimeoutMs: duration("shutdownTimeout", 0),
    s3: resolveS3(raw),
  };
}

function resolveS3(raw: Record<ServerOptionKey, string | null>): S3Settings | null {
  if (!raw.s3Endpoint) {
    const stray = (["s3AccessKey", "s3SecretKey", "s3PublicEndpoint"] as const).find((k) => raw[k]);
    if (stray) throw new Error(`${flagOf(stray)} needs --s3-endpoint`);
    return null;
  }
  const endpoint = checkEndpoint("--s3-endpoint", raw.s3Endpoint);
  const publicEndpoint = raw.s3PublicEndpoint ? checkEndpoint("--s3-public-endpoint", raw.s3PublicEndpoint) : null;
  if (!raw.s3AccessKey || !raw.s3SecretKey) throw new Error("--s3-endpoint needs --s3-access-key and --s3-secret-key (or DRIVE_S3_ACCESS_KEY and DRIVE_S3_SECRET_KEY)");
  const bucket = raw.s3Bucket ?? "";
  // S3's bucket naming rules; a bad name would otherwise fail only at the first request.
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) || bucket.includes("..") || /^\d+\.\d+\.\d+\.\d+$/.test(bucket)) {
    throw new Error(`--s3-bucket ${JSON.stringify(bucket)} is not a valid bucket name (3-63 of a-z, 0-9, '.', '-')`);
  }
  const pathStyleRaw = raw.s3PathStyle ?? "auto";
  if (!["auto", "true", "false"].includes(pathStyleRaw)) throw new Error(`--s3-path-style must be auto, true or false, not ${JSON.stringify(pathStyleRaw)}`);
  const sse = raw.s3Sse ?? "none";
  if (sse !== "none" && sse !== "AES256") throw new Error(`--s3-sse must be none or AES256, not ${JSON.stringify(sse)}`);
  return {
    endpoint,
    publicEndpoint,
    bucket,
    accessKey: raw.s3AccessKey,
    secretKey: raw.s3SecretKey,
    region: raw.s3Region || "us-east-1",
    pathStyle: pathStyleRaw === "auto" ? !/(^|\.)amazonaws\.com$/.test(new URL(endpoint).hostname) : pathStyleRaw === "true",
    sse: sse === "AES256",
  };
}

function checkEndpoint(flag: string, value: string): string {
  const trimmed = value.replace(/\/$/, "");
  if (!/^https?:\/\/[^/?#]+$/.test(trimmed)) throw new Error(`${flag} must look like http(s)://host[:port], not ${JSON.stringify(value)}`);
  return trimmed;
}

function flagOf(key: ServerOptionKey): string {
  return serverOptions.find((o) => o.key === key)!.flag;
}
