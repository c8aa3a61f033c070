import cliProgress from "cli-progress";
import type { FileRecord, Snapshot, Summary } from "../accounting/accounting.js";
import { BasePrinter } from "./base-printer.js";
import { fitLine, width, type Segment } from "./fit.js";
import { formatBytes, formatPercent } from "./format.js";
import { bar, isHashing, pace, phaseLabel } from "./live-lines.js";
import { errorLine, fileLine, runSummaryLine, summaryLine } from "./plain-printer.js";
import type { PrintableError, SummaryExtra, TextSink } from "./printer.js";

/**
 * A one-line cli-progress bar, for a TTY that calls itself TERM=dumb: ink
 * redraws several lines with cursor-up escapes, which such terminals (Emacs
 * shells, some IDE consoles) print as garbage, while a single line redrawn in
 * place mostly works. noTTYOutput makes it print a line every few seconds
 * when it is forced onto a non-TTY instead of printing nothing.
 *
 * The line is ours (liveLines' bar line and pace, fitted to the width),
 * drawn through cli-progress's format function.
 *
 * Messages that arrive while the bar is drawn are held and printed after it
 * stops: cli-progress restores a saved cursor position on stop, and lines
 * printed meanwhile would move the bar away from it.
 */
export interface BarPrinterOptions {
  /** Where the bar and the summary line go. */
  stdout: NodeJS.WriteStream;
  stderr: TextSink;
  files?: boolean;
  /** Update interval. Default 100 ms. */
  intervalMs?: number;
}

/** The bar's value is a fraction in thousandths; the text comes from our own formatting. */
const SCALE = 1000;

/**
 * cli-progress 3.12 schedules its redraws with a setTimeout it never
 * unref()s, which would hold the process open if a command forgot close().
 * Its render() re-arms that timer on every frame, so unref it there. The
 * `timer` field is internal; the version is pinned in package.json.
 */
class UnrefSingleBar extends cliProgress.SingleBar {
  override render(): void {
    super.render();
    (this as unknown as { timer?: NodeJS.Timeout | null }).timer?.unref?.();
  }
}

export class BarPrinter extends BasePrinter {
  private readonly stdout: NodeJS.WriteStream;
  private readonly stderr: TextSink;
  private bar: UnrefSingleBar | null = null;
  private readonly held: string[] = [];

  constructor(options: BarPrinterOptions) {
    super({ intervalMs: options.intervalMs ?? 100, files: options.files });
    this.stdout = options.stdout;
    this.stderr = options.stderr;
  }

  protected override begin(snap: Snapshot): void {
    this.bar = new UnrefSingleBar({
      stream: this.stdout,
      format: (_options, _params, payload: { line?: string }) => payload.line ?? "",
      fps: 10,
      noTTYOutput: true,
      notTTYSchedule: 5000,
      // No cursor hiding and line-wrap toggling: fewer escapes for a dumb
      // terminal to misread.
      hideCursor: false,
      linewrap: true,
      clearOnComplete: true,
    });
    this.bar.start(SCALE, 0, { line: this.line(snap) });
  }

  protected tick(snap: Snapshot): void {
    this.bar?.update(0, { line: this.line(snap) });
  }

  protected renderMessage(text: string): void {
    if (this.bar) this.held.push(text);
    else this.stderr.write(`${text}\n`);
  }

  protected renderFile(r: FileRecord): void {
    if (r.action === "failed" || (r.action === "skipped" && r.reason !== "unchanged")) {
      const line = fileLine(r);
      if (line) this.renderMessage(line);
    }
  }

  protected renderFinish(summary: Summary, extra: SummaryExtra, snap: Snapshot | null): void {
    this.end(snap);
    this.stdout.write(`${this.files ? runSummaryLine(summary, extra) : summaryLine(summary, extra)}\n`);
  }

  protected renderFail(err: PrintableError, snap: Snapshot | null): void {
    this.end(snap);
    this.stderr.write(`${errorLine(err)}\n`);
  }

  protected override async release(): Promise<void> {
    this.end(null);
  }

  /** "push 3/120  [████░░░░]  20%  12.0 MiB / 60.0 MiB  4.0 MiB/s  ETA 12s", fitted to the width. */
  line(s: Snapshot): string {
    // One column short of the width: a line that fills the last column wraps on some terminals.
    const columns = (this.stdout.columns || 80) - 1;
    const hashing = isHashing(s.phase);
    const title: Segment = this.files
      ? { text: `${s.op ?? "drive"} ${s.filesDone}/${s.filesTotal}` }
      : { text: hashing ? phaseLabel(s) : s.op ?? "drive", priority: 3 };
    const fraction = hashing ? s.phaseProgress : s.percentDone;
    const amount = hashing
      ? `${formatBytes(s.phaseHashedBytes)}${s.phaseBytesTotal === null ? "" : ` / ${formatBytes(s.phaseBytesTotal)}`}`
      : `${formatBytes(s.bytesDone)} / ${formatBytes(s.bytesTotal)}`;
    const rest: Segment[] = [{ text: formatPercent(fraction).padStart(4) }, { text: amount, priority: 1 }, ...pace(s)];
    // The bar takes what the words leave, up to 20 cells; under 5 it says nothing.
    const words = fitLine([title, ...rest], columns);
    const cells = Math.min(20, columns - width(words) - 4);
    const segments = cells >= 5 ? [title, { text: `[${bar(fraction ?? 0, cells)}]` }, ...rest] : [title, ...rest];
    return fitLine(segments, columns);
  }

  private end(snap: Snapshot | null): void {
    if (this.bar) {
      if (snap) this.bar.update(0, { line: this.line(snap) });
      this.bar.stop();
      this.bar = null;
    }
    for (const text of this.held.splice(0)) this.stderr.write(`${text}\n`);
  }
}
