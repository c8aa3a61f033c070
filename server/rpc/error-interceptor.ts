import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { BlobError, type BlobErrorCode } from "../blob/errors.js";
import { ErrorInfoSchema, ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import { isTransientError } from "../../shared/io/transient-errors.js";
import { connectCodeOf, DriveError } from "../errors.js";
import type { Logger } from "../log.js";
import { kCaller } from "./caller.js";

const blobCode: Record<BlobErrorCode, Code> = {
  not_found: Code.NotFound,
  invalid: Code.InvalidArgument,
  retryable: Code.Unavailable,
  permanent: Code.Internal,
};

// PostgreSQL SQLSTATEs a client may retry: serialization failure, deadlock, and the server going away.
const PG_ABORTED = new Set(["40001", "40P01"]);
const PG_UNAVAILABLE = /^(08|57P0|53)/;

/**
 * Maps every error to a Connect code in one place, and logs each call.
 * Domain and store errors keep their message, and domain errors their
 * ErrorInfo; anything unknown becomes a generic Internal, with the cause in
 * the log only. A server stream's errors come while it is read, after this
 * call has returned: its messages are wrapped so they get the same mapping,
 * and the stream is logged once, when it ends.
 */
export function errorInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const fields = () => ({
      rpc: `${req.service.typeName}/${req.method.name}`,
      user: req.contextValues.get(kCaller)?.user.name,
      ms: Math.round(performance.now() - started),
    });
    const fail = (err: unknown, extra: Record<string, unknown> = {}) => {
      const mapped = toConnectError(err);
      const level = mapped.code === Code.Internal || mapped.code === Code.Unknown ? "error" : "info";
      const reason = err instanceof DriveError && err.info?.reason ? ErrorReason[err.info.reason] : undefined;
      log[level]("rpc", { ...fields(), ...extra, code: Code[mapped.code], reason, message: mapped.rawMessage, err: level === "error" ? err : undefined });
      return mapped;
    };
    try {
      const res = await next(req);
      if (!res.stream) {
        log.info("rpc", { ...fields(), code: "ok" });
        return res;
      }
      const messages = res.message;
      let sent = 0;
      let ended = false;
      const end = (code: string, message?: string) => {
        if (ended) return;
        ended = true;
        req.signal.removeEventListener("abort", gone);
        log.info("rpc", { ...fields(), messages: sent, code, message });
      };
      // connect stops reading a stream whose client went away, without ending the generator: log it here.
      const gone = () => end("canceled", "the client went away");
      req.signal.addEventListener("abort", gone);
      async function* mapped() {
        try {
          for await (const m of messages) {
            sent++;
            yield m;
          }
          end(req.signal.aborted ? "canceled" : "ok");
        } catch (err) {
          if (req.signal.aborted) return gone();
          ended = true;
          req.signal.removeEventListener("abort", gone);
          throw fail(err, { messages: sent });
        } finally {
          gone();
        }
      }
      return { ...res, message: mapped() };
    } catch (err) {
      throw fail(err);
    }
  };
}

export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof DriveError) {
    // The reason travels as a typed detail: Connect's error body, gRPC's grpc-status-details-bin.
    const details = err.info ? [{ desc: ErrorInfoSchema, value: err.info }] : [];
    return new ConnectError(err.message, connectCodeOf[err.code], undefined, details);
  }
  if (err instanceof BlobError) {
    const code = blobCode[err.code];
    return new ConnectError(code === Code.Internal ? "object store error" : `object store: ${err.message}`, code);
  }
  const sysCode = (err as { code?: unknown })?.code;
  if (typeof sysCode === "string") {
    if (PG_ABORTED.has(sysCode)) return new ConnectError("conflicting concurrent change, retry", Code.Aborted);
    if (PG_UNAVAILABLE.test(sysCode)) return new ConnectError("metadata store unavailable", Code.Unavailable);
  }
  // A socket error that reached here is the database's connection breaking.
  if (isTransientError(err)) return new ConnectError("metadata store unavailable", Code.Unavailable);
  return new ConnectError("internal error", Code.Internal);
}
