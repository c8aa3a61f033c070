/**
 * --json output: one JSON object per line on stdout, for scripts.
 *
 * THIS IS A PUBLIC CONTRACT. Fields may be added; none is renamed, removed or
 * changes type without a major version. Consumers must ignore unknown "type"
 * values and unknown fields. All keys are snake_case. Byte counts are
 * integers; times are milliseconds unless the key says seconds.
 *
 * {"type":"status", ...}       about once a second while a transfer runs;
 *                              not under --quiet, and not before the first
 *                              transfer event.
 *   op                  "push" | "pull" | null (null while hashing before the
 *                       transfer started)
 *   remote, local       paths of the current transfer ("" before it started)
 *   phase               "idle" | "hash" | "transfer" | "verify" | "commit" | "done"
 *   percent_done        bytes_done / bytes_total, 0..1; null before start
 *   phase_progress      0..1 during "hash" and "verify", else null
 *   files_total         transfers started, or planned when a tree's plan
 *                       says more
 *   files_done          transfers finished
 *   files_to_do, files_in_flight, files_skipped, files_deleted, files_failed
 *                       a run of many files (0 for one file but files_to_do)
 *   bytes_total         size of everything being moved (plaintext)
 *   bytes_done          plaintext bytes done: of finished parts, of skipped
 *                       ones, and what parts in flight moved so far; equals
 *                       bytes_total at the end, compressed or not
 *   bytes_transferred   bytes that crossed the wire so far, after
 *                       compression (for data sent raw, its plaintext)
 *   bytes_skipped       plaintext bytes that did not need to move (already
 *                       stored, copied by the server, deduplicated, already
 *                       on disk from a resume or reused from local files)
 *   parts_total, parts_done, parts_transferred, parts_skipped, parts_in_flight
 *   retries             part retries so far
 *   hashed_bytes        bytes hashed (scan before push, verify after pull)
 *   rate_bytes_per_sec  over the last few seconds, not since the start
 *   eta_seconds         whole seconds, rounded up; null when unknown
 *   phase_rate_bytes_per_sec, phase_eta_seconds
 *                       during "hash" and "verify": from the bytes hashed
 *   elapsed_ms
 *
 * {"type":"message","message":"..."}
 *                              an informational line, e.g.
 *                              "deduplicated: already stored"; not under --quiet.
 *
 * {"type":"summary", ...}      once, last line of a successful command.
 *   op, remote, local
 *   files_total, files_done
 *   files_sent               files whose content moved (every finished
 *                            transfer, deduplicated ones included)
 *   files_skipped            files not transferred (unchanged, or skipped
 *                            for a reason: see the "file" lines)
 *   files_deleted, files_failed
 *   bytes_unchanged          bytes of the files skipped as unchanged
 *   bytes_total, bytes_transferred, bytes_skipped   as in status, final:
 *                            bytes_transferred is what crossed the wire, so a
 *                            script measuring a delta reads this one field
 *   bytes_copied             push: plaintext bytes the server filled by
 *                            copying what it already stored (part of
 *                            bytes_skipped); 0 for a pull
 *   bytes_reused             pull: plaintext bytes taken from local files
 *                            instead of the network (part of bytes_skipped);
 *                            0 for a push
 *   bytes_compression_saved  plaintext of the parts that moved minus the
 *                            bytes that carried them (zstd); 0 when nothing
 *                            was compressed
 *   parts_total, parts_transferred, parts_skipped
 *   retries, hashed_bytes
 *   duration_ms              wall time of the whole command
 *   avg_rate_bytes_per_sec   bytes_transferred / duration
 *   and what the command adds, e.g.:
 *   revision                 the new (push) or fetched (pull) revision
 *   content_hash             the file's content hash
 *   deduplicated             true when no bytes had to move
 *   drive sync adds: sync (true), rounds, ops_done, ops_failed, conflicts
 *   (conflicted copies made), pending (operations and files left for a
 *   later run), and with --dry-run dry_run (true) and ops_planned
 *   (these never override the fields above)
 *
 * {"type":"file","action":"...","path":"...", ...}
 *                              a run of many files (push/pull of a folder):
 *                              one line as each file ends, also under --quiet.
 *   action "sent"            op, path (the source), remote, local, bytes,
 *                            bytes_transferred, revision, content_hash,
 *                            deduplicated
 *   action "skipped"         path, bytes, reason ("unchanged", "collision",
 *                            "symlink", "unsafe_name", "changed_locally",
 *                            "unreadable")
 *   action "deleted"         path
 *   action "failed"          path, code, message; the run goes on, then
 *                            exits non-zero after its summary
 *
 * {"type":"op","op":"...","path":"...","why":"...","outcome":"...", ...}
 *                              drive sync: one line per operation as it ends
 *                              (outcome "done", "skipped", "failed") or, with
 *                              --dry-run, as planned ("planned"); also under
 *                              --quiet.
 *   op                       upload, download, remote_mkdir, local_mkdir,
 *                            remote_attrs, local_attrs, remote_delete,
 *                            local_delete, remote_move, local_move,
 *                            conflict_copy, record, forget
 *   path                     relative to the sync root (a move's source)
 *   to                       a move's or conflicted copy's destination
 *   why                      local_new, local_edit, local_attrs, local_delete,
 *                            local_move, remote_new, remote_edit,
 *                            remote_attrs, remote_delete, remote_move,
 *                            conflict, edit_beats_delete, same_change
 *   message                  skipped: which check failed; failed: the error
 *
 * {"type":"halt","reason":"...","message":"..."}
 *                              drive sync: the delete guard stopped the run
 *                              before anything was deleted. reason is
 *                              max_delete, root_missing, root_empty,
 *                              marker_missing, device_changed or
 *                              remote_root_missing. A one-off sync then ends
 *                              with exit_error (code usage, exit 2).
 *
 * {"type":"exit_error","code":"...","message":"...","exit_code":N,"reason":"..."}
 *                              once, last line of a failed command. code is the
 *                              stable machine code; exit_code equals the
 *                              process's exit status; reason, when present, is
 *                              the server's ErrorReason without its prefix
 *                              (proto/drive/v1/errors.proto), e.g.
 *                              "REVISION_CONFLICT".
 *
 * Everything goes to stdout, errors included, so `drive ... --json | jq` sees
 * the whole story without 2>&1.
 * Except with `drive pull REMOTE -`: stdout carries the file's bytes, so every line goes to stderr.
 */
import type { FileRecord, Snapshot, Summary, SyncEvent } from "../accounting/accounting.js";
import { BasePrinter } from "./base-printer.js";
import type { PrintableError, SummaryExtra, TextSink } from "./printer.js";

export interface JsonPrinterOptions {
  /** Where the lines go; normally process.stdout. */
  out: TextSink;
  quiet?: boolean;
  /** A run of many files: a "file" line as each ends. */
  files?: boolean;
  /** Status interval. Default 1000 ms. */
  intervalMs?: number;
}

export class JsonPrinter extends BasePrinter {
  private readonly out: TextSink;

  constructor(options: JsonPrinterOptions) {
    super({ intervalMs: options.intervalMs ?? 1000, quiet: options.quiet, files: options.files });
    this.out = options.out;
  }

  protected tick(snap: Snapshot): void {
    if (snap.phase !== "idle") this.line(statusObject(snap));
  }

  protected renderMessage(text: string): void {
    this.line({ type: "message", message: text });
  }

  /** File lines are data, not progress: they stay under quiet. */
  protected renderFile(r: FileRecord): void {
    this.line(fileObject(r));
  }

  /** Operation and halt lines are data: they stay under quiet. */
  protected override renderSync(ev: SyncEvent): void {
    this.line(syncObject(ev));
  }

  protected renderFinish(summary: Summary, extra: SummaryExtra): void {
    this.line(summaryObject(summary, extra));
  }

  protected renderFail(err: PrintableError): void {
    this.line({ type: "exit_error", code: err.code, message: err.message, exit_code: err.exitCode, ...(err.reason ? { reason: err.reason } : {}) });
  }

  private line(obj: Record<string, unknown>): void {
    this.out.write(`${JSON.stringify(obj, jsonValue)}\n`);
  }
}

/** One file of a run, as its "file" line. Exported for tests. */
export function fileObject(r: FileRecord): Record<string, unknown> {
  switch (r.action) {
    case "sent":
      return {
        type: "file",
        action: "sent",
        op: r.op,
        path: r.op === "pull" ? r.remote : r.local || r.remote,
        remote: r.remote,
        local: r.local,
        bytes: r.bytes,
        bytes_transferred: r.bytesTransferred,
        revision: r.revision,
        content_hash: r.contentHash,
        deduplicated: r.deduplicated,
      };
    case "skipped":
      return { type: "file", action: "skipped", path: r.path, bytes: r.bytes, reason: r.reason };
    case "deleted":
      return { type: "file", action: "deleted", path: r.path };
    case "failed":
      return { type: "file", action: "failed", path: r.path, code: r.code, message: r.message };
  }
}

/** A sync operation as its "op" line, a halt as its "halt" line. Exported for tests. */
export function syncObject(ev: SyncEvent): Record<string, unknown> {
  if (ev.type === "sync_halt") return { type: "halt", reason: ev.reason, message: ev.message };
  return { type: "op", op: ev.op, path: ev.path, ...(ev.to !== undefined ? { to: ev.to } : {}), why: ev.why, outcome: ev.outcome, ...(ev.message ? { message: ev.message } : {}) };
}

/** The status line's fields, in documented order. Exported for tests. */
export function statusObject(s: Snapshot): Record<string, unknown> {
  return {
    type: "status",
    op: s.op,
    remote: s.remote,
    local: s.local,
    phase: s.phase,
    percent_done: round4(s.percentDone),
    phase_progress: round4(s.phaseProgress),
    files_total: s.filesTotal,
    files_done: s.filesDone,
    files_to_do: s.filesToDo,
    files_in_flight: s.filesInFlight.length,
    files_skipped: s.filesSkipped,
    files_deleted: s.filesDeleted,
    files_failed: s.filesFailed,
    bytes_total: s.bytesTotal,
    bytes_done: s.bytesDone,
    bytes_transferred: s.bytesTransferred,
    bytes_skipped: s.bytesSkipped,
    parts_total: s.partsTotal,
    parts_done: s.partsDone,
    parts_transferred: s.partsTransferred,
    parts_skipped: s.partsSkipped,
    parts_in_flight: s.partsInFlight,
    retries: s.retries,
    hashed_bytes: s.hashedBytes,
    rate_bytes_per_sec: Math.round(s.rateBytesPerSec),
    eta_seconds: s.etaSeconds === null ? null : Math.ceil(s.etaSeconds),
    phase_rate_bytes_per_sec: Math.round(s.phaseRateBytesPerSec),
    phase_eta_seconds: s.phaseEtaSeconds === null ? null : Math.ceil(s.phaseEtaSeconds),
    elapsed_ms: Math.round(s.elapsedMs),
  };
}

/** The summary line: accounting's fields, then extra's under snake_case keys. Exported for tests. */
export function summaryObject(s: Summary, extra: SummaryExtra = {}): Record<string, unknown> {
  const fixed: Record<string, unknown> = {
    type: "summary",
    op: s.op,
    remote: s.remote,
    local: s.local,
    files_total: s.filesTotal,
    files_done: s.filesDone,
    files_sent: s.filesSent,
    files_skipped: s.filesSkipped,
    files_deleted: s.filesDeleted,
    files_failed: s.filesFailed,
    bytes_total: s.bytesTotal,
    bytes_transferred: s.bytesTransferred,
    bytes_skipped: s.bytesSkipped,
    bytes_unchanged: s.bytesUnchanged,
    bytes_copied: s.bytesCopied,
    bytes_reused: s.bytesReused,
    bytes_compression_saved: s.bytesCompressionSaved,
    parts_total: s.partsTotal,
    parts_transferred: s.partsTransferred,
    parts_skipped: s.partsSkipped,
    retries: s.retries,
    hashed_bytes: s.hashedBytes,
    duration_ms: Math.round(s.durationMs),
    avg_rate_bytes_per_sec: Math.round(s.avgRateBytesPerSec),
  };
  const out = { ...fixed };
  for (const [key, value] of Object.entries(extra)) {
    const snake = snakeCase(key);
    // Accounting owns the documented fields; a command cannot redefine them.
    if (snake in fixed || value === undefined) continue;
    out[snake] = value;
  }
  return out;
}

/** contentHash -> content_hash; already snake_case keys are unchanged. */
export function snakeCase(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").replace(/-/g, "_").toLowerCase();
}

/**
 * JSON.stringify throws on bigint, and protobuf-es gives int64 fields (the
 * revision) as bigint. A safe integer becomes a number, as scripts expect;
 * a larger one a decimal string rather than a silently rounded number.
 */
function jsonValue(_key: string, value: unknown): unknown {
  if (typeof value !== "bigint") return value;
  return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
    ? Number(value)
    : value.toString();
}

function round4(x: number | null): number | null {
  return x === null ? null : Math.round(x * 10_000) / 10_000;
}
