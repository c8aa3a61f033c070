import { gunzipSync } from "node:zlib";
import type { ConnectRouter } from "@connectrpc/connect";
import { createAsyncIterable, readAllBytes, type UniversalHandler, type UniversalServerResponse } from "@connectrpc/connect/protocol";

/** Longest error message a client gets back; past it, the message is cut and says how long it was. */
export const MAX_ERROR_MESSAGE = 512;

/**
 * Mends two answers connect-es makes itself, before any interceptor runs:
 * - A request body that is not valid protobuf gets Internal ("parse binary:
 *   premature EOF"): its serializer serves clients too, where a bad message
 *   is the server's fault. On the server it is the client's: InvalidArgument,
 *   for Connect (HTTP 500 → 400, JSON body) and gRPC (the trailer, set before
 *   the handler returns).
 * - A JSON body it cannot decode is quoted back whole ("expected bigint:
 *   999…", as long as the body allows): the message is cut to
 *   MAX_ERROR_MESSAGE, so no input is echoed unbounded. On gRPC an echo that
 *   long would also overflow HTTP/2's header frame and end the connection.
 * gRPC-web, which drive's clients do not use, is left as is.
 */
export function parseErrorsAsInvalidArgument(router: ConnectRouter): void {
  const handlers = router.handlers as UniversalHandler[];
  handlers.forEach((handler, i) => {
    handlers[i] = Object.assign(async (req: Parameters<UniversalHandler>[0]) => fix(await handler(req)), handler);
  });
}

const PARSE = "parse binary:";
/** An error body can quote at most the request, which readMaxBytes bounds; this is well above any we allow. */
const MAX_ERROR_BODY = 16 * 1024 * 1024;

async function fix(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  const trailer = res.trailer;
  const grpcMessage = trailer?.get("grpc-message");
  if (trailer && grpcMessage) {
    const message = safeDecode(grpcMessage);
    if (trailer.get("grpc-status") === "13" && message.startsWith(PARSE)) trailer.set("grpc-status", "3");
    if (message.length > MAX_ERROR_MESSAGE) trailer.set("grpc-message", encodeURIComponent(wellFormed(bounded(message))));
    return res;
  }
  const header = res.header;
  const encoding = header?.get("content-encoding") ?? "";
  if (res.status < 400 || !res.body || !header?.get("content-type")?.startsWith("application/json") || !["", "gzip"].includes(encoding)) return res;
  const bytes = res.body instanceof Uint8Array ? res.body : await readAllBytes(res.body as AsyncIterable<Uint8Array>, MAX_ERROR_BODY);
  let error: { code?: string; message?: string } | null = null;
  try {
    // A long error body is compressed when the client accepts gzip; it is ours, and small once inflated.
    const plain = encoding === "gzip" ? gunzipSync(bytes, { maxOutputLength: MAX_ERROR_BODY }) : bytes;
    error = JSON.parse(new TextDecoder().decode(plain)) as { code?: string; message?: string };
  } catch {
    // not an error body of ours: passed on as it was
  }
  const parseError = error?.code === "internal" && error.message?.startsWith(PARSE);
  const long = typeof error?.message === "string" && error.message.length > MAX_ERROR_MESSAGE;
  if (!error || (!parseError && !long)) return { ...res, body: createAsyncIterable([bytes]) };
  const mended = { ...error, message: bounded(error.message ?? ""), ...(parseError ? { code: "invalid_argument" } : {}) };
  const body = new TextEncoder().encode(JSON.stringify(mended));
  header.set("content-length", String(body.byteLength));
  header.delete("content-encoding"); // the mended body goes out plain
  return { ...res, status: parseError ? 400 : res.status, body: createAsyncIterable([body]) };
}

function bounded(message: string): string {
  if (message.length <= MAX_ERROR_MESSAGE) return message;
  // Never cut a surrogate pair in two: encodeURIComponent throws on half of one.
  const cut = message.slice(0, MAX_ERROR_MESSAGE).replace(/[\uD800-\uDBFF]$/, "");
  return `${cut}… (${message.length} characters in all)`;
}

/** Lone surrogates (echoed input) as U+FFFD, which encodeURIComponent can encode. */
function wellFormed(s: string): string {
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
