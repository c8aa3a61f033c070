import cliProgress from "cli-progress";
import type { Accounting, Snapshot, Summary } from "../accounting/accounting.js";
import { formatBytes, formatEta, formatPercent, formatRate } from "./format.js";
import { errorLine, summaryLine } from "./plain-printer.js";
import { every, type PrintableError, type Printer, type SummaryExtra, type TextSink } from "./printer.js";

/**
 * A one-line cli-progress bar, for a TTY that calls itself TERM=dumb: ink
 * redraws several lines with cursor-up escapes, which such terminals (Emacs
 * shells, some IDE consoles) print as garbage, while a single line redrawn in
 * place mostly works. noTTYOutput makes it print a line every few seconds
 * when it is forced onto a non-TTY instead of printing nothing.
 *
 * Messages that arrive while the bar is drawn are held and printed after it
 * stops: cli-progress restores a saved cursor position on stop, and lines
 * printed meanwhile would move the bar away from it.
 */
export interface BarPrinterOptions {
  /** Where the bar and the summary line go. */
  stdout: NodeJS.WriteStream;
  stderr: TextSink;
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

export class BarPrinter implements Printer {
  private readonly stdout: NodeJS.WriteStream;
  private readonly stderr: TextSink;
  private readonly intervalMs: number;
  private bar: UnrefSingleBar | null = null;
  private acc: Accounting | null = null;
  private stopTicker: (() => void) | null = null;
  private readonly held: string[] = [];
  private ended = false;

  constructor(options: BarPrinterOptions) {
    this.stdout = options.stdout;
    this.stderr = options.stderr;
    this.intervalMs = options.intervalMs ?? 100;
  }

  start(acc: Accounting): void {
    if (this.ended || this.bar) return;
    this.acc = acc;
    this.bar = new UnrefSingleBar({
      stream: this.stdout,
      // Our own tokens only: cli-progress's {eta}, {percentage} and {value}
      // come from its own estimate and would override a payload of that name.
      format: "{title} [{bar}] {percent}  {amount}  {rate}  ETA {remaining}  {parts}",
      barsize: 20,
      fps: 10,
      noTTYOutput: true,
      notTTYSchedule: 5000,
      // No cursor hiding and line-wrap toggling: fewer escapes for a dumb
      // terminal to misread. linewrap: true trims the line to the width.
      hideCursor: false,
      linewrap: true,
      clearOnComplete: true,
    });
    const snap = acc.snapshot();
    this.bar.start(SCALE, value(snap), payload(snap));
    this.stopTicker = every(this.intervalMs, () => this.update());
  }

  message(text: string): void {
    if (this.ended) return;
    if (this.bar) this.held.push(text);
    else this.stderr.write(`${text}\n`);
  }

  finish(summary: Summary, extra: SummaryExtra = {}): void {
    if (this.ended) return;
    this.end();
    this.stdout.write(`${summaryLine(summary, extra)}\n`);
  }

  fail(err: PrintableError): void {
    if (this.ended) return;
    this.end();
    this.stderr.write(`${errorLine(err)}\n`);
  }

  async close(): Promise<void> {
    this.end();
  }

  private update(): void {
    if (!this.bar || !this.acc) return;
    const snap = this.acc.snapshot();
    this.bar.update(value(snap), payload(snap));
  }

  private end(): void {
    this.ended = true;
    this.stopTicker?.();
    this.stopTicker = null;
    if (this.bar) {
      this.update();
      this.bar.stop();
      this.bar = null;
    }
    for (const text of this.held.splice(0)) this.stderr.write(`${text}\n`);
  }
}

/** Like the ink view: while hashing or verifying, the bar follows that phase. */
function fraction(s: Snapshot): number {
  const hashing = s.phase === "hash" || s.phase === "verify";
  return (hashing ? s.phaseProgress : s.percentDone) ?? 0;
}

function value(s: Snapshot): number {
  return Math.round(fraction(s) * SCALE);
}

function payload(s: Snapshot): Record<string, string> {
  const hashing = s.phase === "hash" || s.phase === "verify";
  const verb = s.phase === "hash" ? "hashing" : s.phase === "verify" ? "verifying" : s.op ?? "drive";
  return {
    title: verb,
    percent: formatPercent(hashing ? s.phaseProgress : s.percentDone).padStart(4),
    amount: hashing
      ? formatBytes(s.phaseHashedBytes)
      : `${formatBytes(s.bytesDone)} / ${formatBytes(s.bytesTotal)}`,
    rate: formatRate(s.rateBytesPerSec),
    remaining: formatEta(s.etaSeconds),
    parts: `parts ${s.partsDone}/${s.partsTotal} (${s.partsInFlight} in flight)`,
  };
}
