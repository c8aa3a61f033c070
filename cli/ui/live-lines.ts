import type { FileProgress, Phase, Snapshot } from "../accounting/accounting.js";
import { fitSegments, printable, truncateMiddle, width, type Segment } from "./fit.js";
import { formatBytes, formatDuration, formatEta, formatPercent, formatRate } from "./format.js";
import { displayName } from "./plain-printer.js";

/**
 * The live view as lines of segments, each fitted to the terminal's width:
 * the ink view draws them, the bar printer draws the first two as one line.
 * A pure function of a Snapshot.
 *
 * One file:
 *   push big.iso → /backups/big.iso  transferring
 *   [███████████████░░░░░░░░░░░░░░░]  50%  512.0 MiB / 1.0 GiB
 *   210.3 MiB/s  ETA 2s  parts 12/24 (4 in flight)  elapsed 2.4s
 *
 * Many files (files: true):
 *   push  files 3/120  117 to do  40 skipped  1 failed
 *   [██████░░░░░░░░░░░░░░░░░░░░░░░░]  20%  12.0 MiB / 60.0 MiB
 *   4.0 MiB/s  ETA 12s  elapsed 3.1s
 *     photos/2026/…/IMG_0001.jpg   45%  2.0 MiB
 *     … and 2 more
 */
export interface LiveLinesOptions {
  columns: number;
  /** A run of many files. */
  files?: boolean;
  /** Files in flight listed by name; more are counted. Default 4. */
  maxFiles?: number;
}

export function liveLines(s: Snapshot, opts: LiveLinesOptions): Segment[][] {
  const columns = Math.max(10, opts.columns);
  const lines = opts.files ? runLines(s, columns, opts.maxFiles ?? 4) : fileLines(s, columns);
  return lines.map((l) => fitSegments(l, columns));
}

export function isHashing(phase: Phase): boolean {
  return phase === "hash" || phase === "verify";
}

function fileLines(s: Snapshot, columns: number): Segment[][] {
  if (s.phase === "idle") return [[{ text: "preparing…", dim: true }]];
  const label = phaseLabel(s);
  const title = fileTitle(s, columns - width(label) - 2);
  return [
    [{ text: title, bold: true }, { text: label, color: phaseColor(s.phase), priority: 1 }],
    barLine(s, columns),
    segments([
      ...pace(s),
      // Before its "start" a file has no parts to count yet.
      s.op ? { text: `parts ${s.partsDone}/${s.partsTotal} (${s.partsInFlight} in flight)`, priority: 2 } : null,
      s.retries > 0 ? { text: retries(s.retries), color: "yellow", priority: 3 } : null,
      s.filesTotal > 1 ? { text: `files ${s.filesDone}/${s.filesTotal}`, priority: 3 } : null,
      { text: `elapsed ${formatDuration(s.elapsedMs)}`, dim: true, priority: 4 },
    ]),
  ];
}

function runLines(s: Snapshot, columns: number, maxFiles: number): Segment[][] {
  const verb = s.op ?? "drive";
  if (s.filesTotal === 0 && s.filesInFlight.length === 0 && s.phase !== "done") {
    return [[{ text: verb, bold: true }, { text: `scanning, ${s.entriesScanned} entries`, color: "magenta" }]];
  }
  const head = segments([
    { text: verb, bold: true },
    { text: `files ${s.filesDone}/${s.filesTotal}` },
    { text: `${s.filesToDo} to do`, priority: 2 },
    s.filesSkipped > 0 ? { text: `${s.filesSkipped} skipped`, dim: true, priority: 3 } : null,
    s.filesDeleted > 0 ? { text: `${s.filesDeleted} deleted`, priority: 3 } : null,
    s.filesFailed > 0 ? { text: `${s.filesFailed} failed`, color: "red", priority: 1 } : null,
  ]);
  const rate = segments([
    ...pace(s),
    s.retries > 0 ? { text: retries(s.retries), color: "yellow", priority: 3 } : null,
    { text: `elapsed ${formatDuration(s.elapsedMs)}`, dim: true, priority: 4 },
  ]);
  const lines = [head, barLine(s, columns), rate];
  const shown = s.filesInFlight.slice(0, maxFiles);
  for (const f of shown) lines.push(inFlightLine(f, columns));
  if (s.filesInFlight.length > shown.length) lines.push([{ text: `  … and ${s.filesInFlight.length - shown.length} more`, dim: true }]);
  return lines;
}

/** "  photos/…/IMG_0001.jpg  45%  2.0 MiB": the name shrinks in the middle, the numbers stay. */
function inFlightLine(f: FileProgress, columns: number): Segment[] {
  const fraction = isHashing(f.phase) ? f.phaseProgress : f.bytesTotal ? f.bytesDone / f.bytesTotal : f.bytesTotal === 0 ? 1 : null;
  const verb = f.phase === "hash" ? "hashing " : f.phase === "verify" ? "verifying " : f.phase === "commit" ? "committing " : "";
  const stat = `${verb}${formatPercent(fraction).padStart(4)}`;
  const size = f.bytesTotal === null ? "" : formatBytes(f.bytesTotal);
  const room = columns - 2 - width(stat) - 2 - (size ? width(size) + 2 : 0);
  const name = truncateMiddle(printable(f.name), Math.max(8, room));
  return [{ text: `  ${name}` }, { text: stat }, { text: size, dim: true, priority: 1 }];
}

/** The bar, its percent and the bytes; while hashing, the bar follows that phase. */
export function barLine(s: Snapshot, columns: number): Segment[] {
  const hashing = isHashing(s.phase);
  // While hashing or verifying, the bytes bar would sit still (or full, for
  // a verify) and look stuck.
  const fraction = hashing ? s.phaseProgress : s.percentDone;
  const amount = hashing
    ? `${formatBytes(s.phaseHashedBytes)}${s.phaseBytesTotal === null ? "" : ` / ${formatBytes(s.phaseBytesTotal)}`}`
    : `${formatBytes(s.bytesDone)} / ${formatBytes(s.bytesTotal)}`;
  const percent = formatPercent(fraction).padStart(4);
  // The bar takes what the numbers leave, 10 to 30 cells.
  const cells = Math.max(10, Math.min(30, columns - 2 - 2 - width(percent) - 2 - width(amount)));
  return segments([
    { text: `[${bar(fraction ?? 0, cells)}]`, color: "cyan", priority: 2 },
    { text: percent },
    { text: amount, priority: 1 },
    !hashing && s.bytesSkipped > 0 ? { text: `(${formatBytes(s.bytesSkipped)} skipped)`, dim: true, priority: 3 } : null,
  ]);
}

/** Rate and ETA: of the bytes moved, or while hashing or verifying, of the bytes hashed. */
export function pace(s: Snapshot): Segment[] {
  const hashing = isHashing(s.phase);
  const rate = hashing ? s.phaseRateBytesPerSec : s.rateBytesPerSec;
  const eta = hashing ? s.phaseEtaSeconds : s.etaSeconds;
  return [{ text: formatRate(rate), priority: 1 }, { text: `ETA ${formatEta(eta)}` }];
}

/** "push big.iso → /backups/big.iso", or when that is too wide "push big.iso", the name shortened in the middle. */
function fileTitle(s: Snapshot, room: number): string {
  if (!s.op) return "drive";
  const name = printable(displayName(s.op, s.remote, s.local));
  const full = s.op === "push" ? `push ${name} → ${printable(s.remote)}` : `pull ${name} → ${printable(s.local)}`;
  if (width(full) <= room) return full;
  return `${s.op} ${truncateMiddle(name, Math.max(1, room - s.op.length - 1))}`;
}

export function phaseLabel(s: Snapshot): string {
  switch (s.phase) {
    case "hash":
      return s.phaseProgress === null ? "hashing" : `hashing ${formatPercent(s.phaseProgress)}`;
    case "verify":
      return s.phaseProgress === null ? "verifying" : `verifying ${formatPercent(s.phaseProgress)}`;
    case "transfer":
      return "transferring";
    case "commit":
      return "committing";
    case "done":
      return "done";
    case "idle":
      return "preparing";
  }
}

function phaseColor(phase: Phase): string {
  return phase === "done" ? "green" : phase === "transfer" ? "cyan" : "magenta";
}

function retries(n: number): string {
  return `${n} ${n === 1 ? "retry" : "retries"}`;
}

function segments(list: readonly (Segment | null)[]): Segment[] {
  return list.filter((s): s is Segment => s !== null);
}

/** Whole cells only: the partial-block glyphs render unevenly across fonts. */
export function bar(fraction: number, width: number): string {
  const clamped = Math.min(1, Math.max(0, fraction));
  const full = Math.floor(clamped * width);
  return "█".repeat(full) + "░".repeat(width - full);
}
