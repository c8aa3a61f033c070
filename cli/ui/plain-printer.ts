import type { Accounting, Snapshot, Summary } from "../accounting/accounting.js";
import { formatBytes, formatDuration, formatEta, formatPercent, formatRate } from "./format.js";
import { every, type PrintableError, type Printer, type SummaryExtra, type TextSink } from "./printer.js";

/**
 * Output for a non-TTY without --json: logs, cron mail, CI consoles. Nothing
 * here moves the cursor; every write is a whole line.
 *
 * - progress: a status line on stderr every intervalMs (default 5 s), so a
 *   log of a long transfer shows it is alive without drowning in lines; a
 *   transfer shorter than that prints none;
 * - messages: stderr;
 * - the summary: one line on stdout, the command's result;
 * - an error: one line on stderr, "drive: error: <message>".
 *
 * The ink and bar printers end with the same lines, so statusLine,
 * summaryLine and errorLine are exported for them.
 */
export interface PlainPrinterOptions {
  stdout: TextSink;
  stderr: TextSink;
  quiet?: boolean;
  /** Progress interval. Default 5000 ms. */
  intervalMs?: number;
}

export class PlainPrinter implements Printer {
  private readonly stdout: TextSink;
  private readonly stderr: TextSink;
  private readonly quiet: boolean;
  private readonly intervalMs: number;
  private stopTicker: (() => void) | null = null;
  private ended = false;

  constructor(options: PlainPrinterOptions) {
    this.stdout = options.stdout;
    this.stderr = options.stderr;
    this.quiet = options.quiet ?? false;
    this.intervalMs = options.intervalMs ?? 5000;
  }

  start(acc: Accounting): void {
    if (this.quiet || this.ended || this.stopTicker) return;
    this.stopTicker = every(this.intervalMs, () => {
      const snap = acc.snapshot();
      if (snap.phase !== "idle" && snap.phase !== "done") this.stderr.write(`${statusLine(snap)}\n`);
    });
  }

  message(text: string): void {
    if (this.quiet || this.ended) return;
    this.stderr.write(`${text}\n`);
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
    this.stop();
  }

  private end(): void {
    this.ended = true;
    this.stop();
  }

  private stop(): void {
    this.stopTicker?.();
    this.stopTicker = null;
  }
}

/**
 * "push big.iso: 512.0 MiB / 1.0 GiB (50%), 210.3 MiB/s, ETA 2s, 4 parts in flight"
 * or, while hashing, "push big.iso: hashing 40% (409.6 MiB / 1.0 GiB)".
 */
export function statusLine(s: Snapshot): string {
  const head = s.op ? `${s.op} ${displayName(s.op, s.remote, s.local)}:` : "drive:";
  if (s.phase === "hash" || s.phase === "verify") {
    const verb = s.phase === "hash" ? "hashing" : "verifying";
    if (s.phaseProgress === null) return `${head} ${verb}, ${formatBytes(s.phaseHashedBytes)} read`;
    // phaseProgress is only known once "start" gave the size, so bytesTotal is the file's.
    return `${head} ${verb} ${formatPercent(s.phaseProgress)} (${formatBytes(s.phaseHashedBytes)} / ${formatBytes(s.bytesTotal)})`;
  }
  const parts = [
    `${head} ${formatBytes(s.bytesDone)} / ${formatBytes(s.bytesTotal)} (${formatPercent(s.percentDone)})`,
  ];
  if (s.phase === "commit") {
    parts.push("committing");
  } else {
    parts.push(formatRate(s.rateBytesPerSec), `ETA ${formatEta(s.etaSeconds)}`);
    parts.push(`${s.partsInFlight} ${plural(s.partsInFlight, "part")} in flight`);
  }
  if (s.retries > 0) parts.push(`${s.retries} ${plural(s.retries, "retry", "retries")}`);
  return parts.join(", ");
}

/**
 * "pushed big.iso (1.0 GiB) in 4.8s, 213.3 MiB/s, revision 3", and when
 * not every byte went over the wire as it is, what happened to them:
 * "pushed big.iso (1.0 GiB) in 0.9s, 5.8 MiB/s, revision 4: sent 5.2 MiB,
 * copied 1018.8 MiB server-side, saved 0 B by compression". Skipped bytes
 * are named, so a resumed or delta transfer does not seem impossibly fast.
 */
export function summaryLine(s: Summary, extra: SummaryExtra = {}): string {
  const verb = s.op === "push" ? "pushed" : s.op === "pull" ? "pulled" : "done";
  const what =
    s.filesDone > 1 ? `${s.filesDone} files` : s.op ? displayName(s.op, s.remote, s.local) : "";
  let line = `${verb}${what ? ` ${what}` : ""} (${formatBytes(s.bytesTotal)}) in ${formatDuration(s.durationMs)}`;
  if (extra.deduplicated === true) line += ", deduplicated";
  // A rate for zero bytes moved says nothing.
  else if (s.bytesTransferred > 0) line += `, ${formatRate(s.avgRateBytesPerSec)}`;
  if (s.retries > 0) line += `, ${s.retries} ${plural(s.retries, "retry", "retries")}`;
  if (extra.revision !== undefined && extra.revision !== null) line += `, revision ${String(extra.revision)}`;
  const detail = extra.deduplicated === true ? null : deltaLine(s);
  return detail ? `${line}: ${detail}` : line;
}

/**
 * "sent 5.2 MiB, copied 1018.8 MiB server-side, saved 0 B by compression":
 * where the bytes went, when some did not cross the wire as they are (a
 * delta, a resume, compression); null when every byte simply moved.
 * The ink and bar printers end with the same line.
 */
export function deltaLine(s: Summary): string | null {
  if (s.bytesSkipped <= 0 && s.bytesCompressionSaved <= 0) return null;
  const pull = s.op === "pull";
  const parts = [`${pull ? "received" : "sent"} ${formatBytes(s.bytesTransferred)}`];
  if (s.bytesCopied > 0) parts.push(`copied ${formatBytes(s.bytesCopied)} server-side`);
  if (s.bytesReused > 0) parts.push(`reused ${formatBytes(s.bytesReused)} locally`);
  const other = s.bytesSkipped - s.bytesCopied - s.bytesReused;
  if (other > 0) parts.push(`${formatBytes(other)} ${pull ? "already local" : "already stored"}`);
  parts.push(`saved ${formatBytes(s.bytesCompressionSaved)} by compression`);
  return parts.join(", ");
}

export function errorLine(err: PrintableError): string {
  // One line, whatever the message holds, so log scrapers see one error.
  return `drive: error: ${err.message.replace(/\s*\n\s*/g, " ")}`;
}

/**
 * The file as the user thinks of it: the source's base name (the local file
 * for a push, the remote one for a pull), or the other side when the source
 * is a pipe ("-").
 */
export function displayName(op: "push" | "pull", remote: string, local: string): string {
  const [source, other] = op === "push" ? [local, remote] : [remote, local];
  const path = source && source !== "-" ? source : other || source;
  const trimmed = path.replace(/[\\/]+$/, "");
  return trimmed.split(/[\\/]/).pop() || path;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return n === 1 ? one : many;
}
