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
 * the log only.
 */
export function errorInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const fields = () => ({
      rpc: `${req.service.typeName}/${req.method.name}`,
      user: req.contextValues.get(kCaller)?.user.name,
      ms: Math.round(performance.now() - started),
    });
    try {
      const res = await next(req);
      log.info("rpc", { ...fields(), code: "ok" });
      return res;
    } catch (err) {
      const mapped = toConnectError(err);
      const level = mapped.code === Code.Internal || mapped.code === Code.Unknown ? "error" : "info";
      const reason = err instanceof DriveError && err.info?.reason ? ErrorReason[err.info.reason] : undefined;
      log[level]("rpc", { ...fields(), code: Code[mapped.code], reason, message: mapped.rawMessage, err: level === "error" ? err : undefined });
      throw mapped;
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
