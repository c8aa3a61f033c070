import type { FileRecord, Snapshot, Summary, SyncEvent } from "../accounting/accounting.js";
import { BasePrinter } from "./base-printer.js";
import { printable } from "./fit.js";
import { formatBytes, formatDuration, formatEta, formatPercent, formatRate } from "./format.js";
import type { PrintableError, SummaryExtra, TextSink } from "./printer.js";
import { syncLine, syncLineIsTrouble, syncLineToStderr, syncSummaryLine } from "./sync-lines.js";

/**
 * Output for a non-TTY without --json: logs, cron mail, CI consoles. Nothing
 * here moves the cursor; every write is a whole line.
 *
 * - progress: a status line on stderr every intervalMs (default 5 s), so a
 *   log of a long transfer shows it is alive without drowning in lines; a
 *   transfer shorter than that prints none;
 * - messages: stderr;
 * - a run of many files: a line on stdout per file sent or deleted, and on
 *   stderr per file skipped for a reason other than "unchanged" or failed
 *   (failures even under quiet);
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
  /** A run of many files: a line per file. */
  files?: boolean;
  /** Two-way sync: its operation lines say what was sent, so no "pushed"/"pulled" line per file. */
  sync?: boolean;
  /** Progress interval. Default 5000 ms. */
  intervalMs?: number;
}

export class PlainPrinter extends BasePrinter {
  private readonly stdout: TextSink;
  private readonly stderr: TextSink;
  private readonly sync: boolean;

  constructor(options: PlainPrinterOptions) {
    super({ intervalMs: options.intervalMs ?? 5000, quiet: options.quiet, files: options.files });
    this.stdout = options.stdout;
    this.stderr = options.stderr;
    this.sync = options.sync ?? false;
  }

  protected tick(snap: Snapshot): void {
    if (snap.phase !== "idle" && snap.phase !== "done") this.stderr.write(`${this.files ? runStatusLine(snap) : statusLine(snap)}\n`);
  }

  protected renderMessage(text: string): void {
    this.stderr.write(`${text}\n`);
  }

  protected renderFile(r: FileRecord): void {
    if (this.sync && r.action === "sent") return;
    const line = fileLine(r);
    if (line === null) return;
    const toStderr = r.action === "failed" || r.action === "skipped";
    if (this.quiet && r.action !== "failed") return;
    (toStderr ? this.stderr : this.stdout).write(`${line}\n`);
  }

  /** As file lines: done and planned operations on stdout, skipped and failed ones and a halt on stderr. */
  protected override renderSync(ev: SyncEvent): void {
    const line = syncLine(ev);
    if (line === null || (this.quiet && !syncLineIsTrouble(ev))) return;
    (syncLineToStderr(ev) ? this.stderr : this.stdout).write(`${line}\n`);
  }

  protected renderFinish(summary: Summary, extra: SummaryExtra): void {
    this.stdout.write(`${this.files ? runSummaryLine(summary, extra) : summaryLine(summary, extra)}\n`);
  }

  protected renderFail(err: PrintableError): void {
    this.stderr.write(`${errorLine(err)}\n`);
  }
}

/**
 * One file of a run: "pushed photos/a.jpg (2.0 MiB)", "deleted old.txt",
 * "skipped link (symlink)", "failed b.bin: connection refused". null for a
 * file skipped as unchanged: a re-run of an unchanged tree says so in its
 * summary, not in ten thousand lines (--json has them).
 */
export function fileLine(r: FileRecord): string | null {
  const line = rawFileLine(r);
  return line === null ? null : printable(line);
}

function rawFileLine(r: FileRecord): string | null {
  switch (r.action) {
    case "sent": {
      const verb = r.op === "pull" ? "pulled" : "pushed";
      const name = r.op === "pull" ? r.remote || r.local : r.local || r.remote;
      return `${verb} ${name} (${formatBytes(r.bytes)}${r.deduplicated ? ", already stored" : ""})`;
    }
    case "skipped":
      return r.reason === "unchanged" ? null : `skipped ${r.path} (${r.reason.replace(/_/g, " ")})`;
    case "deleted":
      return `deleted ${r.path}`;
    case "failed":
      return `failed ${r.path}: ${r.message.replace(/\s*\n\s*/g, " ")}`;
  }
}

/** "push: 3/120 files, 12.0 MiB / 40.0 MiB (30%), 4.0 MiB/s, ETA 7s, 4 in flight" */
export function runStatusLine(s: Snapshot): string {
  const head = `${s.op ?? "drive"}:`;
  if (s.filesTotal === 0 && s.filesInFlight.length === 0) {
    return `${head} scanning, ${s.entriesScanned} ${plural(s.entriesScanned, "entry", "entries")}`;
  }
  const parts = [
    `${head} ${s.filesDone}/${s.filesTotal} files`,
    `${formatBytes(s.bytesDone)} / ${formatBytes(s.bytesTotal)} (${formatPercent(s.percentDone)})`,
    formatRate(s.rateBytesPerSec),
    `ETA ${formatEta(s.etaSeconds)}`,
    `${s.filesInFlight.length} in flight`,
  ];
  if (s.filesSkipped > 0) parts.push(`${s.filesSkipped} skipped`);
  if (s.filesDeleted > 0) parts.push(`${s.filesDeleted} deleted`);
  if (s.filesFailed > 0) parts.push(`${s.filesFailed} failed`);
  if (s.retries > 0) parts.push(`${s.retries} ${plural(s.retries, "retry", "retries")}`);
  return parts.join(", ");
}

/**
 * "pushed 12 files (4.0 MiB) in 1.2s, 3.3 MiB/s: 12 sent, 100 skipped, 2
 * deleted, 0 failed", and what happened to bytes that did not move as they
 * are, as for one file.
 */
export function runSummaryLine(s: Summary, extra: SummaryExtra = {}): string {
  if (extra.sync === true) return syncSummaryLine(s, extra);
  const verb = s.op === "push" ? "pushed" : s.op === "pull" ? "pulled" : "done";
  let line = `${verb} ${s.filesSent} ${plural(s.filesSent, "file")} (${formatBytes(s.bytesTotal)}) in ${formatDuration(s.durationMs)}`;
  if (s.bytesTransferred > 0) line += `, ${formatRate(s.avgRateBytesPerSec)}`;
  if (s.retries > 0) line += `, ${s.retries} ${plural(s.retries, "retry", "retries")}`;
  line += `: ${s.filesSent} sent, ${s.filesSkipped} skipped, ${s.filesDeleted} deleted, ${s.filesFailed} failed`;
  if (extra.dry_run === true) line += " (dry run: nothing changed)";
  const detail = deltaLine(s);
  return detail ? `${line}; ${detail}` : line;
}

/**
 * "push big.iso: 512.0 MiB / 1.0 GiB (50%), 210.3 MiB/s, ETA 2s, 4 parts in flight"
 * or, while hashing, "push big.iso: hashing 40% (409.6 MiB / 1.0 GiB)".
 */
export function statusLine(s: Snapshot): string {
  const head = s.op ? `${s.op} ${displayName(s.op, s.remote, s.local)}:` : "drive:";
  if (s.phase === "hash" || s.phase === "verify") {
    const verb = s.phase === "hash" ? "hashing" : "verifying";
    // Rate and ETA from the bytes hashed: a 50 GB file hashes for minutes.
    const pace = `${formatRate(s.phaseRateBytesPerSec)}, ETA ${formatEta(s.phaseEtaSeconds)}`;
    if (s.phaseProgress === null) return `${head} ${verb}, ${formatBytes(s.phaseHashedBytes)} read, ${formatRate(s.phaseRateBytesPerSec)}`;
    return `${head} ${verb} ${formatPercent(s.phaseProgress)} (${formatBytes(s.phaseHashedBytes)} / ${formatBytes(s.phaseBytesTotal ?? s.bytesTotal)}), ${pace}`;
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
  return printable(trimmed.split(/[\\/]/).pop() || path);
}

function plural(n: number, one: string, many = `${one}s`): string {
  return n === 1 ? one : many;
}
