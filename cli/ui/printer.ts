import type { Accounting, Summary } from "../accounting/accounting.js";

/**
 * A Printer only renders (restic's ProgressPrinter): it reads Accounting
 * snapshots on its own clock and never sees transfer events. There is one per
 * output mode: JSON lines, plain lines, an ink view, a cli-progress bar.
 *
 * Contract, shared by every implementation:
 * - start() at most once. It begins periodic rendering with timers that are
 *   unref()'d, so a printer never keeps the process alive.
 * - finish() or fail() ends the output; whichever comes first wins and later
 *   calls of either are ignored, so an error path can call fail() without
 *   knowing whether finish() already ran. Both stop the timers.
 * - message() may come at any time before the end; after it, it is dropped.
 * - close() is idempotent and safe without start(). It stops timers and
 *   releases the terminal; await it before process.exit(). A command calls
 *   it in a finally block.
 * - quiet drops periodic status and messages but keeps the summary and
 *   errors.
 */
export interface Printer {
  /** Begins periodic rendering of acc's snapshots. */
  start(acc: Accounting): void;
  /** An informational line, e.g. "deduplicated: already stored". */
  message(text: string): void;
  /**
   * The final render and the summary. extra carries what the command knows
   * and accounting does not: revision, content_hash, deduplicated.
   */
  finish(summary: Summary, extra?: SummaryExtra): void;
  fail(err: PrintableError): void;
  close(): Promise<void>;
}

/**
 * What the command adds to a summary. Keys are snake_case (camelCase keys are
 * converted for JSON). Well-known ones are typed so the printers can use them;
 * any other key passes through to the JSON summary.
 */
export interface SummaryExtra {
  /** protobuf-es gives int64 as bigint. */
  revision?: number | bigint;
  content_hash?: string;
  deduplicated?: boolean;
  /** Something the user should know although the command succeeded; also printed as a message. */
  warning?: string;
  [key: string]: unknown;
}

/** The CLI's error model as a printer needs it: the exit-code table lives with the commands. */
export interface PrintableError {
  message: string;
  /** Stable machine code, e.g. "not_found". */
  code: string;
  exitCode: number;
  /** The server's typed reason, e.g. "REVISION_CONFLICT", when it gave one. */
  reason?: string;
}

/** The one thing a printer needs from a stream; tests pass a fake. */
export interface TextSink {
  write(text: string): unknown;
}

/**
 * Runs fn every intervalMs until the returned stop function is called. The
 * timer is unref()'d: rendering must never be what keeps the process alive.
 */
export function every(intervalMs: number, fn: () => void): () => void {
  const timer = setInterval(fn, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
