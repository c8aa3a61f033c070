import { render, type Instance } from "ink";
import type { Accounting, Snapshot, Summary } from "../accounting/accounting.js";
import { errorLine, summaryLine } from "./plain-printer.js";
import { every, type PrintableError, type Printer, type SummaryExtra, type TextSink } from "./printer.js";
import { ProgressView } from "./progress-view.js";

/**
 * The TTY printer: an ink view on stdout, re-rendered about ten times a second
 * from the Accounting's snapshot. Only choosePrinter decides when to use it;
 * on a non-TTY ink would keep writing cursor escapes into the pipe.
 *
 * On finish the live region is cleared and the plain summary line printed in
 * its place, so the scrollback reads the same as a non-TTY run. On fail the
 * last frame stays, to show how far the transfer got, and the error line
 * follows on stderr.
 */
export interface InkPrinterOptions {
  /** A TTY stream; ink draws here and the summary line goes here. */
  stdout: NodeJS.WriteStream;
  stderr: TextSink;
  /** Re-render interval. Default 100 ms. */
  intervalMs?: number;
}

export class InkPrinter implements Printer {
  private readonly stdout: NodeJS.WriteStream;
  private readonly stderr: TextSink;
  private readonly intervalMs: number;
  private instance: Instance | null = null;
  private mounted = false;
  private acc: Accounting | null = null;
  private stopTicker: (() => void) | null = null;
  /** Kept in the tree: ink's Static prints each message once, above the live region. */
  private readonly messages: string[] = [];
  private ended = false;

  constructor(options: InkPrinterOptions) {
    this.stdout = options.stdout;
    this.stderr = options.stderr;
    this.intervalMs = options.intervalMs ?? 100;
  }

  start(acc: Accounting): void {
    if (this.ended || this.instance) return;
    this.acc = acc;
    this.instance = render(this.view(acc.snapshot()), {
      stdout: this.stdout,
      // Commands own their console and Ctrl+C handling (abort, then exit code).
      patchConsole: false,
      exitOnCtrlC: false,
    });
    this.mounted = true;
    this.stopTicker = every(this.intervalMs, () => this.rerender());
  }

  message(text: string): void {
    if (this.ended) return;
    if (!this.mounted) {
      // Nothing mounted to draw it: plain stderr, as the plain printer does.
      this.stderr.write(`${text}\n`);
      return;
    }
    this.messages.push(text);
    this.rerender();
  }

  finish(summary: Summary, extra: SummaryExtra = {}): void {
    if (this.ended) return;
    this.ended = true;
    this.stop();
    if (this.mounted && this.instance && this.acc) this.instance.rerender(this.view(this.acc.snapshot(), true));
    this.unmount();
    this.stdout.write(`${summaryLine(summary, extra)}\n`);
  }

  fail(err: PrintableError): void {
    if (this.ended) return;
    this.ended = true;
    this.stop();
    // One last frame, so the screen shows where the transfer stopped.
    this.rerender();
    this.unmount();
    this.stderr.write(`${errorLine(err)}\n`);
  }

  async close(): Promise<void> {
    this.ended = true;
    this.stop();
    const instance = this.instance;
    this.unmount();
    // Resolves once ink's last writes are flushed, before any process.exit().
    await instance?.waitUntilExit();
  }

  private view(snapshot: Snapshot, hidden = false) {
    return <ProgressView snapshot={snapshot} messages={this.messages} hidden={hidden} />;
  }

  private rerender(): void {
    if (this.mounted && this.instance && this.acc) this.instance.rerender(this.view(this.acc.snapshot()));
  }

  private stop(): void {
    this.stopTicker?.();
    this.stopTicker = null;
  }

  private unmount(): void {
    // The instance is kept after unmount, for close() to await its exit.
    if (!this.mounted) return;
    this.mounted = false;
    this.instance?.unmount();
  }
}
