import type { Summary, SyncEvent } from "../accounting/accounting.js";
import { printable } from "./fit.js";
import { formatBytes, formatDuration, formatRate } from "./format.js";
import type { SummaryExtra } from "./printer.js";

/**
 * Two-way sync's lines, for every printer that writes lines (plain, ink,
 * bar). One operation: "upload a/b.txt (local_new)", "local_move a -> b
 * (remote_move)", the same for a dry run's plan; "skipped download c.txt
 * (remote_edit): c.txt changed here since the scan"; "failed upload d.bin
 * (local_new): quota exceeded". A halt: "sync halted: ...". null for
 * bookkeeping that touches neither side (record, forget) when it went as
 * planned: a first sync of two equal trees says so in its summary, not in
 * ten thousand lines (--json has them).
 */
export function syncLine(ev: SyncEvent): string | null {
  if (ev.type === "sync_halt") return printable(`sync halted: ${ev.message}`);
  if ((ev.op === "record" || ev.op === "forget") && (ev.outcome === "done" || ev.outcome === "planned")) return null;
  const what = `${ev.op} ${ev.path}${ev.to !== undefined ? ` -> ${ev.to}` : ""} (${ev.why})`;
  const line = ev.outcome === "skipped" || ev.outcome === "failed" ? `${ev.outcome} ${what}${ev.message ? `: ${ev.message.replace(/\s*\n\s*/g, " ")}` : ""}` : what;
  return printable(line);
}

/** A line the user must see even under --quiet, on stderr: a failure or a halt. */
export function syncLineIsTrouble(ev: SyncEvent): boolean {
  return ev.type === "sync_halt" || ev.outcome === "failed";
}

/** Skipped operations go to stderr with failures: they are what did not happen. */
export function syncLineToStderr(ev: SyncEvent): boolean {
  return ev.type === "sync_halt" || ev.outcome === "failed" || ev.outcome === "skipped";
}

/**
 * The summary of a sync (SummaryExtra.sync set): "synced in 1.2s: 5
 * operations done, 0 failed, 1 conflicted copy, 2 pending (2 rounds); 3.0 MiB
 * moved, 2.5 MiB/s", or for a dry run "dry run: 5 operations planned,
 * nothing changed".
 */
export function syncSummaryLine(s: Summary, extra: SummaryExtra): string {
  const n = (key: string) => (typeof extra[key] === "number" ? (extra[key] as number) : 0);
  if (extra.dry_run === true) return `dry run: ${n("ops_planned")} ${plural(n("ops_planned"), "operation")} planned, nothing changed`;
  let line = `synced in ${formatDuration(s.durationMs)}: ${n("ops_done")} ${plural(n("ops_done"), "operation")} done, ${n("ops_failed")} failed`;
  line += `, ${n("conflicts")} conflicted ${plural(n("conflicts"), "copy", "copies")}, ${n("pending")} pending`;
  if (n("rounds") > 0) line += ` (${n("rounds")} ${plural(n("rounds"), "round")})`;
  if (s.bytesTransferred > 0) line += `; ${formatBytes(s.bytesTransferred)} moved, ${formatRate(s.avgRateBytesPerSec)}`;
  return line;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return n === 1 ? one : many;
}
