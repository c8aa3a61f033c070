import { resolve } from "node:path";
import type { S3StoreOptions } from "../blob/s3/s3-store.js";
import type { LogLevel } from "../log.js";
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
  { key: "uploadTtl", flag: "--upload-ttl", env: "DRIVE_UPLOAD_TTL", default: "24h", help: "an upload untouched this long expires and is swept" },
  { key: "s3Endpoint", flag: "--s3-endpoint", env: "DRIVE_S3_ENDPOINT", default: null, help: "S3 endpoint, http(s)://host[:port]; set, blobs go to S3 (AWS, MinIO, Ceph RGW) instead of the data folder" },
  { key: "s3Bucket", flag: "--s3-bucket", env: "DRIVE_S3_BUCKET", default: "drive", help: "S3 bucket, created if missing" },
  { key: "s3AccessKey", flag: "--s3-access-key", env: "DRIVE_S3_ACCESS_KEY", default: null, help: "S3 access key id" },
  { key: "s3SecretKey", flag: "--s3-secret-key", env: "DRIVE_S3_SECRET_KEY", default: null, help: "S3 secret key (prefer the environment: flags show in ps)" },
  { key: "s3Region", flag: "--s3-region", env: "DRIVE_S3_REGION", default: "us-east-1", help: "S3 region the requests are signed for" },
  { key: "s3PathStyle", flag: "--s3-path-style", env: "DRIVE_S3_PATH_STYLE", default: "auto", help: "true: http://host/bucket/key; false: http://bucket.host/key; auto: false for AWS, true elsewhere" },
  { key: "s3PublicEndpoint", flag: "--s3-public-endpoint", env: "DRIVE_S3_PUBLIC_ENDPOINT", default: null, help: "S3 endpoint as clients reach it, when it differs from --s3-endpoint (containers); presigned URLs use it" },
  { key: "s3Sse", flag: "--s3-sse", env: "DRIVE_S3_SSE", default: "none", help: "server-side encryption at rest: none or AES256 (SSE-S3); the server checks the store takes it at start" },
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
  /** Bound on each start-up step that waits on a dependency (store probe, PostgreSQL connect, migrations). */
  readonly startupTimeoutMs: number;
  readonly logLevel: LogLevel;
  /** null: blobs live on local disk in the data folder. */
  readonly s3: S3Settings | null;
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
    startupTimeoutMs,
    logLevel: logLevel as LogLevel,
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
