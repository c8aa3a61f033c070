import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema, ErrorReason, type ErrorInfo } from "../gen/drive/v1/errors_pb.js";
import { isTransientError } from "../shared/io/transient-errors.js";

/**
 * A push or pull of a folder goes on past a file that fails (each is
 * reported as file_failed) and prints its summary; it then exits with the
 * code of the first failure's kind (runTree in commands/run-transfer.ts), so
 * any failed file makes the exit non-zero and says what kind of failure it
 * was. A run refused before it changed anything exits usage (2) for the
 * --delete guard (TreeRefused "max_delete", raise --max-delete) and for a
 * root that is not a folder, not_found (3) for a missing root.
 *
 * What went wrong, in the classes a script acts on. Each has one exit code,
 * documented in the README's "Exit codes" table; keep the two in step.
 */
export const exitCodes = {
  ok: 0,
  internal: 1,
  usage: 2,
  not_found: 3,
  auth: 4,
  integrity: 5,
  conflict: 6,
  unavailable: 7,
  limit: 8,
  /** `drive server` only: its --listen address is taken by another process. */
  address_in_use: 9,
  /** `drive changes`: the cursor can no longer be replayed (CURSOR_RESET); list again and take a new one. */
  cursor_reset: 10,
  interrupted: 130,
  /** `drive pull REMOTE -`: stdout's reader went away (`| head`); 128 + SIGPIPE, as a shell reports a writer the pipe killed. */
  broken_pipe: 141,
} as const;

export type FailureKind = Exclude<keyof typeof exitCodes, "ok">;

export class CliError extends Error {
  override readonly name = "CliError";
  /** The server's ErrorReason name ("REVISION_CONFLICT"), when it gave one. */
  readonly reason: string | undefined;
  constructor(
    readonly kind: FailureKind,
    message: string,
    options?: { cause?: unknown; reason?: string },
  ) {
    super(message, options);
    this.reason = options?.reason;
  }
  get exitCode(): number {
    return exitCodes[this.kind];
  }
}

/** The server's typed reason decides first; the code only when there is none (an older server). */
const kindOfReason: Partial<Record<ErrorReason, FailureKind>> = {
  [ErrorReason.REVISION_CONFLICT]: "conflict",
  // Reached only when the push's own recovery (report, resend, complete) gave up: not a conflict.
  [ErrorReason.PARTS_MISSING]: "internal",
  [ErrorReason.PARTS_UNCONFIRMED]: "internal",
  [ErrorReason.UPLOAD_COMPLETED]: "internal",
  // The push starts over once on its own; if the upload vanishes again, a later run may get through.
  [ErrorReason.UPLOAD_NOT_FOUND]: "unavailable",
  [ErrorReason.LIMIT_EXCEEDED]: "limit",
  [ErrorReason.CURSOR_RESET]: "cursor_reset",
};

const kindOfCode: Partial<Record<Code, FailureKind>> = {
  [Code.InvalidArgument]: "usage",
  [Code.OutOfRange]: "usage",
  [Code.NotFound]: "not_found",
  [Code.Unauthenticated]: "auth",
  [Code.PermissionDenied]: "auth",
  [Code.FailedPrecondition]: "conflict",
  [Code.AlreadyExists]: "conflict",
  [Code.Unavailable]: "unavailable",
  [Code.DeadlineExceeded]: "unavailable",
  [Code.ResourceExhausted]: "unavailable",
  [Code.Aborted]: "unavailable",
  [Code.Canceled]: "interrupted",
};

/** Turns any error into a CliError with a message fit for one line. */
export function toCliError(err: unknown): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof ConnectError) {
    const info = errorInfoOf(err);
    const kind = (info && kindOfReason[info.reason]) ?? kindOfCode[err.code] ?? "internal";
    const prefix = err.code === Code.Unauthenticated ? "authentication failed: " : "";
    const reason = info && info.reason !== ErrorReason.UNSPECIFIED ? ErrorReason[info.reason] : undefined;
    return new CliError(kind, prefix + (err.rawMessage || Code[err.code]), { cause: err, reason });
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.name === "AbortError") return new CliError("interrupted", "interrupted", { cause: err });
  if (e?.code === "ENOTDIR") return new CliError("not_found", e.path ? `${e.path}: a part of this path is not a folder` : e.message, { cause: err });
  if (e?.code === "ENOENT") return new CliError("not_found", e.path ? `${e.path}: no such file or directory` : e.message, { cause: err });
  if (e?.code === "ELOOP") return new CliError("usage", e.path ? `${e.path}: too many symbolic links (a link loop?)` : e.message, { cause: err });
  if (e?.code === "EACCES" || e?.code === "EPERM") return new CliError("internal", e.path ? `${e.path}: permission denied` : e.message, { cause: err });
  if (isTransientError(err)) return new CliError("unavailable", e.message, { cause: err });
  return new CliError("internal", e?.message ?? String(err), { cause: err });
}

/** The server's ErrorInfo detail on an RPC error (proto/drive/v1/errors.proto), if it sent one. */
export function errorInfoOf(err: unknown): ErrorInfo | undefined {
  return err instanceof ConnectError ? err.findDetails(ErrorInfoSchema)[0] : undefined;
}

/** True when an RPC failed for this typed reason. */
export function hasReason(err: unknown, reason: ErrorReason): boolean {
  return errorInfoOf(err)?.reason === reason;
}
