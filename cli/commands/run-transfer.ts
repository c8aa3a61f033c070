import { Accounting } from "../accounting/accounting.js";
import { toCliError } from "../errors.js";
import type { TransferListener } from "../transfer/events.js";
import { choosePrinter } from "../ui/choose-printer.js";
import type { SummaryExtra } from "../ui/printer.js";
import type { CommandContext } from "./context.js";

/** Marks an error the printer has already shown, so main only sets the exit code. */
export class ReportedError extends Error {
  constructor(readonly exitCode: number) {
    super("reported");
  }
}

/**
 * Runs one transfer with accounting and the printer for this terminal:
 * the transfer emits, accounting aggregates, the printer renders.
 */
export async function runTransfer(
  ctx: CommandContext,
  transfer: (emit: TransferListener) => Promise<SummaryExtra>,
): Promise<void> {
  const printer = await choosePrinter({ json: ctx.json, quiet: ctx.quiet, stdout: ctx.stdout, stderr: ctx.stderr });
  const acc = new Accounting();
  printer.start(acc);
  try {
    const extra = await transfer(acc.onEvent);
    if (extra.deduplicated) printer.message("already stored on the server: no bytes moved");
    if (typeof extra.warning === "string") printer.message(`warning: ${extra.warning}`);
    printer.finish(acc.summary(), extra);
  } catch (err) {
    const e = toCliError(ctx.signal.aborted ? ctx.signal.reason ?? err : err);
    // A reader that went away (`drive pull x - | head`) is no news to whoever closed it; scripts still get the JSON line.
    if (e.kind !== "broken_pipe" || ctx.json) printer.fail({ message: e.message, code: e.kind, exitCode: e.exitCode, reason: e.reason });
    throw new ReportedError(e.exitCode);
  } finally {
    await printer.close();
  }
}
