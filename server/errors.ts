import { Code } from "@connectrpc/connect";

/**
 * Domain errors: the closed set of failures the services report on purpose.
 * One interceptor (rpc/error-interceptor.ts) maps them to Connect codes; any
 * other error becomes a generic Internal so no internals leak.
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

export class DriveError extends Error {
  override readonly name = "DriveError";
  constructor(
    readonly code: DriveErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
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
export const precondition = (message: string) => new DriveError("failed_precondition", message);
