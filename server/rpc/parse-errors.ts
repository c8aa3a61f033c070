import type { ConnectRouter } from "@connectrpc/connect";
import { createAsyncIterable, readAllBytes, type UniversalHandler, type UniversalServerResponse } from "@connectrpc/connect/protocol";

/**
 * connect-es answers a request body that is not valid protobuf with
 * Internal ("parse binary: premature EOF"), before any interceptor runs:
 * its serializer serves clients too, where a bad message is the server's
 * fault. On the server it is the client's, so this turns that one answer
 * into InvalidArgument, for Connect (HTTP 500 → 400, JSON body) and gRPC
 * (the trailer, set before the handler returns). JSON bodies already get
 * InvalidArgument. gRPC-web, which drive's clients do not use, is left as is.
 */
export function parseErrorsAsInvalidArgument(router: ConnectRouter): void {
  const handlers = router.handlers as UniversalHandler[];
  handlers.forEach((handler, i) => {
    handlers[i] = Object.assign(async (req: Parameters<UniversalHandler>[0]) => fix(await handler(req)), handler);
  });
}

const PARSE = "parse binary:";

async function fix(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  const trailer = res.trailer;
  const grpcMessage = trailer?.get("grpc-message");
  if (trailer?.get("grpc-status") === "13" && grpcMessage && safeDecode(grpcMessage).startsWith(PARSE)) {
    trailer.set("grpc-status", "3");
    return res;
  }
  const header = res.header;
  if (res.status !== 500 || !res.body || !header?.get("content-type")?.startsWith("application/json") || header.get("content-encoding")) return res;
  const bytes = res.body instanceof Uint8Array ? res.body : await readAllBytes(res.body as AsyncIterable<Uint8Array>, 64 * 1024);
  let error: { code?: string; message?: string } | null = null;
  try {
    error = JSON.parse(new TextDecoder().decode(bytes)) as { code?: string; message?: string };
  } catch {
    // not an error body of ours: passed on as it was
  }
  if (error?.code !== "internal" || !error.message?.startsWith(PARSE)) return { ...res, body: createAsyncIterable([bytes]) };
  const body = new TextEncoder().encode(JSON.stringify({ ...error, code: "invalid_argument" }));
  header.set("content-length", String(body.byteLength));
  return { ...res, status: 400, body: createAsyncIterable([body]) };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
