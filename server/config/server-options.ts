import { resolve } from "node:path";
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
  readonly logLevel: LogLevel;
}

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

  return {
    host: listen[1]!.replace(/^\[(.*)\]$/, "$1"),
    port,
    dataDir: resolve(need("dataDir")),
    databaseUrl: raw.databaseUrl || null,
    publicUrl: raw.publicUrl ? raw.publicUrl.replace(/\/$/, "") : null,
    tls: raw.tlsCert && raw.tlsKey ? { certFile: resolve(raw.tlsCert), keyFile: resolve(raw.tlsKey) } : null,
    urlTtlSeconds: Math.round(urlTtlMs / 1000),
    uploadTtlMs,
    logLevel: logLevel as LogLevel,
  };
}
