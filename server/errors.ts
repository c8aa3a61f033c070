import { Code } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ErrorReason, type ErrorInfoSchema } from "../gen/drive/v1/errors_pb.js";

/**
 * Domain errors: the closed set of failures the services report on purpose.
 * One interceptor (rpc/error-interceptor.ts) maps them to Connect codes and
 * attaches their ErrorInfo (proto/drive/v1/errors.proto) as a typed detail;
 * any other error becomes a generic Internal so no internals leak.
 */
export type DriveErrorCode =
  | "invalid_argument"
  | "not_found"
  | "already_exists"
  | "failed_precondition"
  | "permission_denied"
  | "unauthenticated"
  | "aborted"
  | "unavailable"
  | "resource_exhausted";

export type ErrorInfoInit = MessageInitShape<typeof ErrorInfoSchema>;

export class DriveError extends Error {
  override readonly name = "DriveError";
  /** Why, for programs: sent as the error's drive.v1.ErrorInfo detail. */
  readonly info: ErrorInfoInit | undefined;
  constructor(
    readonly code: DriveErrorCode,
    message: string,
    options?: { cause?: unknown; info?: ErrorInfoInit },
  ) {
    super(message, options);
    this.info = options?.info;
  }
}

export const connectCodeOf: Record<DriveErrorCode, Code> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  permission_denied: Code.PermissionDenied,
  unauthenticated: Code.Unauthenticated,
  aborted: Code.Aborted,
  unavailable: Code.Unavailable,
  resource_exhausted: Code.ResourceExhausted,
};

export const invalid = (message: string) => new DriveError("invalid_argument", message);
export const notFound = (message: string) => new DriveError("not_found", message);

// Every failed precondition has its reason: a client acts on the reason, never on prose.

/** A write based on a revision the path is no longer at. */
export function revisionConflict(path: string, current: { revision: number; deleted: boolean } | undefined, base: number): DriveError {
  const at = current?.revision ?? 0;
  return new DriveError("failed_precondition", `${path} changed: it is at revision ${at}, the change was based on ${base}`, {
    info: {
      reason: ErrorReason.REVISION_CONFLICT,
      detail: { case: "revisionConflict", value: { currentRevision: BigInt(at), currentDeleted: current?.deleted ?? false, baseRevision: BigInt(base) } },
    },
  });
}

/** Parts listed in an error detail, at most; the gRPC trailer carrying it must stay small. */
export const MAX_LISTED_PARTS = 100;

/** CompleteUpload found parts the store lacks, or holds unvouched or at the wrong size. */
export function partsIncomplete(missing: readonly number[], unconfirmed: readonly number[]): DriveError {
  const message =
    [
      missing.length ? `parts missing from the store: ${summarise(missing)}` : "",
      unconfirmed.length ? `parts stored with the wrong size or unconfirmed bytes: ${summarise(unconfirmed)}` : "",
    ]
      .filter(Boolean)
      .join("; ") + " (send them again, then complete)";
  return new DriveError("failed_precondition", message, {
    info: {
      reason: missing.length ? ErrorReason.PARTS_MISSING : ErrorReason.PARTS_UNCONFIRMED,
      detail: {
        case: "partsIncomplete",
        value: {
          missing: missing.slice(0, MAX_LISTED_PARTS),
          missingCount: missing.length,
          unconfirmed: unconfirmed.slice(0, MAX_LISTED_PARTS),
          unconfirmedCount: unconfirmed.length,
        },
      },
    },
  });
}

/** A call that needs an open upload reached one that is completed (possibly by another client). */
export const uploadCompleted = () =>
  new DriveError("failed_precondition", "the upload is already completed: CompleteUpload returns its version", {
    info: { reason: ErrorReason.UPLOAD_COMPLETED },
  });

/**
 * A call that needs the upload's plan came before every chunk was declared.
 * No ErrorReason fits yet (proto/drive/v1/errors.proto): the message says
 * what to send.
 */
export const chunksUndeclared = (declared: number, count: number) =>
  new DriveError("failed_precondition", `the upload has ${declared} of its ${count} chunks declared: send the rest with DeclareChunks first`);

/** DeclareChunks with a page that starts past what the server holds. */
export const chunkGap = (first: number, declared: number) =>
  new DriveError("failed_precondition", `first_chunk ${first} leaves a gap: the server holds chunks 0..${declared - 1}; send from chunk ${declared}`);

/** The upload expired, was aborted or never was. The id is not echoed: it is the caller's input, of any length. */
export const uploadNotFound = (why = "expired, aborted or never made") =>
  new DriveError("not_found", `no such upload (${why})`, { info: { reason: ErrorReason.UPLOAD_NOT_FOUND } });

/**
 * A limit the server enforces: ResourceExhausted for a per-user cap (open
 * uploads), InvalidArgument for a size cap on one request. `limit` is its
 * name in the options or the proto docs.
 */
export function limitExceeded(code: "resource_exhausted" | "invalid_argument", limit: string, max: number, message: string): DriveError {
  return new DriveError(code, message, {
    info: { reason: ErrorReason.LIMIT_EXCEEDED, detail: { case: "limitExceeded", value: { limit, max: BigInt(max) } } },
  });
}

function summarise(numbers: readonly number[]): string {
  const shown = numbers.slice(0, 20).join(", ");
  return numbers.length > 20 ? `${shown} and ${numbers.length - 20} more` : shown;
}
