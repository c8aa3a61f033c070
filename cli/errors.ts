import { Code, ConnectError } from "@connectrpc/connect";
import { isTransientError } from "../server/core/transient-errors.js";

/**
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
  interrupted: 130,
} as const;

export type FailureKind = Exclude<keyof typeof exitCodes, "ok">;

export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    readonly kind: FailureKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
  get exitCode(): number {
    return exitCodes[this.kind];
  }
}

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
    const kind = kindOfCode[err.code] ?? "internal";
    const prefix = err.code === Code.Unauthenticated ? "authentication failed: " : "";
    return new CliError(kind, prefix + (err.rawMessage || Code[err.code]), { cause: err });
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.name === "AbortError") return new CliError("interrupted", "interrupted", { cause: err });
  if (e?.code === "ENOENT") return new CliError("not_found", e.path ? `${e.path}: no such file or directory` : e.message, { cause: err });
  if (e?.code === "EACCES" || e?.code === "EPERM") return new CliError("internal", e.path ? `${e.path}: permission denied` : e.message, { cause: err });
  if (isTransientError(err)) return new CliError("unavailable", e.message, { cause: err });
  return new CliError("internal", e?.message ?? String(err), { cause: err });
}
