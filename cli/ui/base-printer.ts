import type { Accounting, FileRecord, Snapshot, Summary, SyncEvent } from "../accounting/accounting.js";
import { syncLine, syncLineIsTrouble } from "./sync-lines.js";
import { every, type PrintableError, type Printer, type SummaryExtra } from "./printer.js";

export interface BasePrinterOptions {
  /** Periodic render interval. */
  intervalMs: number;
  /** No periodic status and no messages; the summary, errors and (JSON) file lines stay. */
  quiet?: boolean;
  /** A run of many files: render a line as each file ends (runTree). */
  files?: boolean;
}

/**
 * The lifecycle every printer shares, once: start at most once, a periodic
 * render on an unref()'d timer, messages until the end, finish or fail
 * exactly once (whichever comes first), close idempotent and safe without
 * start. A printer extends this and only renders, in the hooks below.
 */
export abstract class BasePrinter implements Printer {
  protected readonly quiet: boolean;
  protected readonly files: boolean;
  protected acc: Accounting | null = null;
  private readonly intervalMs: number;
  private stopTicker: (() => void) | null = null;
  private started = false;
  private ended = false;

  constructor(options: BasePrinterOptions) {
    this.intervalMs = options.intervalMs;
    this.quiet = options.quiet ?? false;
    this.files = options.files ?? false;
  }

  start(acc: Accounting): void {
    if (this.ended || this.started) return;
    this.started = true;
    this.acc = acc;
    acc.listen({
      fileEnded: (r) => {
        if (!this.ended && this.files) this.renderFile(r);
      },
      warning: (message, path) => this.message(`warning: ${path ? `${path}: ` : ""}${message}`),
      sync: (ev) => {
        if (!this.ended) this.renderSync(ev);
      },
    });
    if (this.quiet) return;
    this.begin(acc.snapshot());
    this.stopTicker = every(this.intervalMs, () => {
      if (!this.ended) this.tick(acc.snapshot());
    });
  }

  message(text: string): void {
    if (this.ended || this.quiet) return;
    this.renderMessage(text);
  }

  finish(summary: Summary, extra: SummaryExtra = {}): void {
    if (this.ended) return;
    this.ended = true;
    this.stop();
    this.renderFinish(summary, extra, this.acc?.snapshot() ?? null);
  }

  fail(err: PrintableError): void {
    if (this.ended) return;
    this.ended = true;
    this.stop();
    this.renderFail(err, this.acc?.snapshot() ?? null);
  }

  async close(): Promise<void> {
    this.ended = true;
    this.stop();
    await this.release();
  }

  private stop(): void {
    this.stopTicker?.();
    this.stopTicker = null;
  }

  /** The live view appears (not under quiet). */
  protected begin(_snap: Snapshot): void {}
  /** Every intervalMs until the end (not under quiet). */
  protected abstract tick(snap: Snapshot): void;
  protected abstract renderMessage(text: string): void;
  /** One file of a run ended (only for a run of many files). */
  protected abstract renderFile(record: FileRecord): void;
  /** snap is the last state, for a final frame; null when start() never ran. */
  protected abstract renderFinish(summary: Summary, extra: SummaryExtra, snap: Snapshot | null): void;
  protected abstract renderFail(err: PrintableError, snap: Snapshot | null): void;
  /**
   * Two-way sync: an operation planned or ended, or a halt. By default (the
   * live views) a line among the messages for what the user must read: a
   * dry run's plan, what was skipped or failed, a halt; operations done
   * are counted, as files sent are. Under quiet only failures and halts.
   * The plain and JSON printers write every one.
   */
  protected renderSync(ev: SyncEvent): void {
    const line = syncLine(ev);
    if (line === null || (this.quiet && !syncLineIsTrouble(ev))) return;
    if (ev.type === "sync_op" && ev.outcome === "done") return;
    this.renderMessage(line);
  }
  /** Releases the terminal; runs once per close(), after the end. */
  protected async release(): Promise<void> {}
}
