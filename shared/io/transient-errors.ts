/**
 * The one list of error codes that mean "the network failed, not the
 * request": the same call may work in a moment. The S3 store, the RPC error
 * interceptor, the CLI's RPC retry, its part transfers and its exit-code
 * table all decide from here, so a code is retried (and then reported as
 * "unavailable") everywhere or nowhere.
 */
export const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  // The peer went away or never answered.
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  // No route, for now: a link or a VPN coming back.
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "ENETRESET",
  // Name resolution; ENOTFOUND too, since a container's peer resolves only once it is up.
  "EAI_AGAIN",
  "ENOTFOUND",
  // Node's names for a connection that ended mid-exchange.
  "ERR_STREAM_PREMATURE_CLOSE",
  "ERR_SOCKET_CONNECTION_TIMEOUT",
  "ERR_HTTP2_STREAM_CANCEL",
  "ERR_HTTP2_GOAWAY_SESSION",
  "ERR_HTTP2_SESSION_ERROR",
  "ERR_HTTP2_STREAM_ERROR",
  "ERR_HTTP2_INVALID_SESSION",
  // undici (fetch) wraps its socket errors in these.
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CLOSED",
]);

/** True for a code on the list ("ECONNRESET"); false for anything else, "" included. */
export function isTransientCode(code: unknown): boolean {
  return typeof code === "string" && TRANSIENT_CODES.has(code);
}

/**
 * True when `err`, or an error it wraps (`cause`, or one of an
 * AggregateError's, as Node's happy-eyeballs connect throws), carries a
 * transient code. Node's "socket hang up" has code ECONNRESET already.
 */
export function isTransientError(err: unknown, depth = 0): boolean {
  if (typeof err !== "object" || err === null || depth > 4) return false;
  const e = err as { code?: unknown; cause?: unknown; errors?: unknown };
  if (isTransientCode(e.code)) return true;
  if (Array.isArray(e.errors) && e.errors.some((inner) => isTransientError(inner, depth + 1))) return true;
  return isTransientError(e.cause, depth + 1);
}
