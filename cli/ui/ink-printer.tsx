import { render, type Instance } from "ink";
import type { FileRecord, Snapshot, Summary } from "../accounting/accounting.js";
import { BasePrinter } from "./base-printer.js";
import { errorLine, fileLine, runSummaryLine, summaryLine } from "./plain-printer.js";
import type { PrintableError, SummaryExtra, TextSink } from "./printer.js";
import { ProgressView } from "./progress-view.js";

/**
 * The TTY printer: an ink view on stdout, re-rendered about ten times a second
 * from the Accounting's snapshot. Only choosePrinter decides when to use it;
 * on a non-TTY ink would keep writing cursor escapes into the pipe.
 *
 * On finish the live region is cleared and the plain summary line printed in
 * its place, so the scrollback reads the same as a non-TTY run. On fail the
 * last frame stays, to show how far the transfer got, and the error line
 * follows on stderr. In a run of many files, files that failed or were
 * skipped for a reason print above the live region as they end; the others
 * are counted.
 */
export interface InkPrinterOptions {
  /** A TTY stream; ink draws here and the summary line goes here. */
  stdout: NodeJS.WriteStream;
  stderr: TextSink;
  files?: boolean;
  /** Re-render interval. Default 100 ms. */
  intervalMs?: number;
}

export class InkPrinter extends BasePrinter {
  private readonly stdout: NodeJS.WriteStream;
  private readonly stderr: TextSink;
  private instance: Instance | null = null;
  private mounted = false;
  /** Kept in the tree: ink's Static prints each message once, above the live region. */
  private readonly messages: string[] = [];

  constructor(options: InkPrinterOptions) {
    super({ intervalMs: options.intervalMs ?? 100, files: options.files });
    this.stdout = options.stdout;
    this.stderr = options.stderr;
  }

  protected override begin(snap: Snapshot): void {
    this.instance = render(this.view(snap), {
      stdout: this.stdout,
      // Commands own their console and Ctrl+C handling (abort, then exit code).
      patchConsole: false,
      exitOnCtrlC: false,
    });
    this.mounted = true;
  }

  protected tick(snap: Snapshot): void {
    this.draw(snap);
  }

  protected renderMessage(text: string): void {
    if (!this.mounted) {
      // Nothing mounted to draw it: plain stderr, as the plain printer does.
      this.stderr.write(`${text}\n`);
      return;
    }
    this.messages.push(text);
    if (this.acc) this.draw(this.acc.snapshot());
  }

  protected renderFile(r: FileRecord): void {
    if (r.action === "failed" || (r.action === "skipped" && r.reason !== "unchanged")) {
      const line = fileLine(r);
      if (line) this.renderMessage(line);
    }
  }

  protected renderFinish(summary: Summary, extra: SummaryExtra, snap: Snapshot | null): void {
    if (snap) this.draw(snap, true);
    this.unmount();
    this.stdout.write(`${this.files ? runSummaryLine(summary, extra) : summaryLine(summary, extra)}\n`);
  }

  protected renderFail(err: PrintableError, snap: Snapshot | null): void {
    // One last frame, so the screen shows where the transfer stopped.
    if (snap) this.draw(snap);
    this.unmount();
    this.stderr.write(`${errorLine(err)}\n`);
  }

  protected override async release(): Promise<void> {
    const instance = this.instance;
    this.unmount();
    // Resolves once ink's last writes are flushed, before any process.exit().
    await instance?.waitUntilExit();
  }

  private view(snapshot: Snapshot, hidden = false) {
    // Read at every frame: the user may resize the terminal mid-transfer.
    const columns = this.stdout.columns || 80;
    return <ProgressView snapshot={snapshot} messages={this.messages} hidden={hidden} columns={columns} files={this.files} />;
  }

  private draw(snap: Snapshot, hidden = false): void {
    if (this.mounted && this.instance) this.instance.rerender(this.view(snap, hidden));
  }

  private unmount(): void {
    // The instance is kept after unmount, for close() to await its exit.
    if (!this.mounted) return;
    this.mounted = false;
    this.instance?.unmount();
  }
}
