import { Accounting, type Op } from "../accounting/accounting.js";
import { exitCodes, toCliError, type FailureKind } from "../errors.js";
import { tagFile, type RunListener, type TransferListener } from "../transfer/events.js";
import { choosePrinter } from "../ui/choose-printer.js";
import type { Printer, SummaryExtra } from "../ui/printer.js";
import type { CommandContext } from "./context.js";

/** Marks an error the printer has already shown, so main only sets the exit code. */
export class ReportedError extends Error {
  constructor(readonly exitCode: number) {
    super("reported");
  }
}

/**
 * Runs one transfer with accounting and the printer for this terminal:
 * the transfer emits, accounting aggregates, the printer renders. Its events
 * are file 0 of a run; the output is that of one file.
 */
export async function runTransfer(
  ctx: CommandContext,
  transfer: (emit: TransferListener) => Promise<SummaryExtra>,
): Promise<void> {
  await run(ctx, { files: false }, (emit) => transfer(tagFile(emit, 0)));
}

export interface RunTreeOptions {
  /** The run's direction, for its summary when no file had to move. */
  op?: Op;
  /** Two-way sync: its operation lines say what each file did, so plain output has no "pushed"/"pulled" line per file too. */
  sync?: boolean;
}

/**
 * Runs many files (cli/tree/, cli/watch/): the same pipeline, with a line
 * per file as it ends (JSON "file" lines, plain lines, or the files in
 * flight on a TTY) and a summary counting files sent, skipped, deleted and
 * failed. When files failed, the summary is printed and the command then
 * exits non-zero: with the exit code of the first failure's code when it is
 * one of cli/errors.ts's kinds ("not_found", "conflict", ...), else 1.
 */
export async function runTree(
  ctx: CommandContext,
  tree: (emit: RunListener) => Promise<SummaryExtra>,
  options: RunTreeOptions = {},
): Promise<void> {
  await run(ctx, { files: true, op: options.op, sync: options.sync }, tree);
}

async function run(
  ctx: CommandContext,
  mode: { files: boolean; op?: Op; sync?: boolean },
  work: (emit: RunListener) => Promise<SummaryExtra>,
): Promise<void> {
  const printer = await choosePrinter({ json: ctx.json, quiet: ctx.quiet, files: mode.files, sync: mode.sync, stdout: ctx.stdout, stderr: ctx.stderr });
  const acc = new Accounting({ run: mode.files, ...(mode.op ? { op: mode.op } : {}) });
  let firstFailure: string | null = null;
  acc.listen({
    fileEnded: (r) => {
      if (r.action === "failed" && firstFailure === null) firstFailure = r.code;
    },
  });
  printer.start(acc);
  try {
    const extra = await work(acc.onEvent);
    finish(printer, acc, extra);
  } catch (err) {
    const e = toCliError(ctx.signal.aborted ? ctx.signal.reason ?? err : err);
    // A reader that went away (`drive pull x - | head`) is no news to whoever closed it; scripts still get the JSON line.
    if (e.kind !== "broken_pipe" || ctx.json) printer.fail({ message: e.message, code: e.kind, exitCode: e.exitCode, reason: e.reason });
    throw new ReportedError(e.exitCode);
  } finally {
    await printer.close();
  }
  if (firstFailure !== null) throw new ReportedError(exitCodeOf(firstFailure));
}

function finish(printer: Printer, acc: Accounting, extra: SummaryExtra): void {
  if (extra.deduplicated) printer.message("already stored on the server: no bytes moved");
  if (typeof extra.warning === "string") printer.message(`warning: ${extra.warning}`);
  printer.finish(acc.summary(), extra);
}

function exitCodeOf(code: string): number {
  return code in exitCodes && code !== "ok" ? exitCodes[code as FailureKind] : exitCodes.internal;
}
