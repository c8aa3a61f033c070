import type { RunEvent, TransferEvent } from "../transfer/events.js";
import { FileState } from "./file-state.js";
import { RateWindow } from "./rate-window.js";
import type { AccountingListener, FileProgress, FileRecord, Op, Phase, Snapshot, Summary } from "./types.js";

export type { AccountingListener, FileProgress, FileRecord, Op, Phase, Snapshot, Summary, SyncEvent } from "./types.js";

/**
 * Accounting: the middle of transfer -> accounting -> rendering.
 *
 * Transfers emit events and know nothing of screens; printers read snapshots
 * and know nothing of parts or retries. This class is the only place that
 * turns the one into the other (rclone's StatsInfo, restic's
 * progress.Updater), so every printer shows the same numbers.
 *
 * It consumes RunEvents: each file's TransferEvents tagged with the file's
 * key, so files overlap, plus events about the tree. State is kept per
 * (file, part); a file's state goes when it is done or failed, so a run of
 * any length holds only what is in flight. A TransferEvent without a key is
 * file 0, as a one-file command emits.
 */

export interface AccountingOptions {
  /** Monotonic clock in milliseconds. Default performance.now; tests inject one. */
  now: () => number;
  /** Width of the rate windows. Default 5000 ms. */
  rateWindowMs: number;
  /** The run's direction, for a run that may start no transfer (everything unchanged). */
  op?: Op;
  /**
   * A run of many files (runTree): the clock runs between files until the
   * summary. Also set by the first tree event. Default false: one file,
   * whose clock stops at its "done".
   */
  run?: boolean;
}

export class Accounting {
  private readonly now: () => number;
  private readonly rate: RateWindow;
  private readonly hashRate: RateWindow;
  /** The clock starts when the command makes its Accounting, so durations include setup. */
  private readonly createdAt: number;
  private endedAt: number | null = null;
  private readonly listeners: AccountingListener[] = [];

  private readonly files = new Map<number, FileState>();
  private started = 0;
  /** The latest started file: the one whose names and phase a one-line view shows. */
  private current: FileState | null = null;
  /** What the latest started file was, kept once it is done. */
  private op: Op | null;
  private remote = "";
  private local = "";
  private lastPhase: Phase = "idle";
  /** A tree event came: this is a run of many files, not one transfer. */
  private isRun = false;

  private filesStarted = 0;
  private filesDone = 0;
  private filesSkipped = 0;
  private filesDeleted = 0;
  private filesFailed = 0;
  private filesPlanned = 0;
  private bytesPlanned = 0;
  private scanned = { local: 0, remote: 0 };
  private bytesTotal = 0;
  /** bytesTotal of files that failed, less what they got done: no longer to do. */
  private bytesAbandoned = 0;
  private bytesTransferred = 0;
  private bytesSkipped = 0;
  private bytesUnchanged = 0;
  /** Plaintext of finished parts, so that bytesDone reaches bytesTotal whatever compression did. */
  private bytesPlainDone = 0;
  private bytesCopied = 0;
  private bytesReused = 0;
  private bytesCompressionSaved = 0;
  private partsTotal = 0;
  private partsTransferred = 0;
  private partsSkipped = 0;
  private retries = 0;
  private hashedBytes = 0;
  /** The highest bytesDone a snapshot showed: the bar never goes back. */
  private shownDone = 0;

  constructor(options: Partial<AccountingOptions> = {}) {
    this.now = options.now ?? (() => performance.now());
    const window = options.rateWindowMs === undefined ? {} : { windowMs: options.rateWindowMs };
    this.rate = new RateWindow(window);
    this.hashRate = new RateWindow(window);
    this.op = options.op ?? null;
    this.isRun = options.run ?? false;
    this.createdAt = this.now();
  }

  /** Hears each file's end and each warning as they happen (the per-file lines). */
  listen(listener: AccountingListener): void {
    this.listeners.push(listener);
  }

  /**
   * Feed one event. An arrow property, so it can be passed unbound as a
   * RunListener, or as a TransferListener for one file (file 0).
   */
  readonly onEvent = (ev: RunEvent | TransferEvent): void => {
    const now = this.now();
    if (ev.type.startsWith("tree_") || ev.type.startsWith("file_") || ev.type.startsWith("sync_") || ev.type === "warning") this.isRun = true;
    switch (ev.type) {
      case "tree_scan":
        this.scanned[ev.side] = ev.entries;
        return;
      case "tree_plan":
        this.filesPlanned += ev.filesToSend;
        this.bytesPlanned += ev.bytesToSend;
        this.endedAt = null;
        return;
      case "file_skipped":
        this.filesSkipped += 1;
        if (ev.reason === "unchanged") this.bytesUnchanged += ev.bytes;
        this.record({ action: "skipped", path: ev.path, bytes: ev.bytes, reason: ev.reason });
        return;
      case "file_deleted":
        this.filesDeleted += 1;
        this.record({ action: "deleted", path: ev.path });
        return;
      case "file_failed": {
        const f = this.files.get(ev.file);
        if (f) this.drop(f, now, true);
        this.filesFailed += 1;
        this.record({ action: "failed", path: ev.path, message: ev.message, code: ev.code });
        return;
      }
      case "warning":
        for (const l of this.listeners) l.warning?.(ev.message, ev.path);
        return;
      case "sync_op":
      case "sync_halt":
        for (const l of this.listeners) l.sync?.(ev);
        return;
      default:
        this.onFileEvent("file" in ev ? ev.file : 0, ev, now);
    }
  };

  private onFileEvent(key: number, ev: TransferEvent, now: number): void {
    let f = this.files.get(key);
    if (!f) {
      // Only a file's opening events make its state; a late report after its end is dropped.
      if (ev.type !== "start" && ev.type !== "phase" && ev.type !== "hashed") return;
      f = new FileState(key, this.started++);
      this.files.set(key, f);
    }
    switch (ev.type) {
      case "start":
        if (f.bytesTotal !== null) break; // one start per file
        f.op = ev.op;
        f.remote = ev.remote;
        f.local = ev.local;
        f.phase = "transfer";
        f.bytesTotal = ev.bytesTotal;
        f.bytesSkipped = ev.bytesSkipped;
        this.current = f;
        this.op = ev.op;
        this.remote = ev.remote;
        this.local = ev.local;
        this.endedAt = null;
        this.filesStarted += 1;
        this.bytesTotal += ev.bytesTotal;
        this.bytesSkipped += ev.bytesSkipped;
        this.partsTotal += ev.partsTotal;
        this.partsSkipped += ev.partsSkipped;
        break;
      case "phase":
        f.phase = ev.phase;
        f.phaseHashed = 0;
        f.phaseTotal = ev.bytesTotal ?? null;
        // Hashing's clock starts with the phase, as the transfer's with its first part.
        if (ev.phase === "hash" || ev.phase === "verify") this.hashRate.begin(now);
        if (!this.current || this.current.bytesTotal === null || this.current === f) this.current = f;
        this.endedAt = null;
        break;
      case "part_start":
        // The rate's clock starts with the first part, not with the first
        // progress report, which arrives after some bytes already moved.
        this.rate.begin(now);
        if (!f.finished.has(ev.partNumber) && !f.inFlight.has(ev.partNumber)) f.inFlight.set(ev.partNumber, 0);
        break;
      case "progress":
        // A late report for a finished part was already settled by part_done.
        if (f.finished.has(ev.partNumber)) break;
        f.inFlight.set(ev.partNumber, (f.inFlight.get(ev.partNumber) ?? 0) + ev.bytes);
        this.addTransferred(f, ev.bytes, now);
        break;
      case "part_done": {
        if (f.finished.has(ev.partNumber)) break;
        // part_done is authoritative: wireBytes (else size) settles whatever
        // the progress reports added up to, whether the transfer sent none,
        // or over-counted a retry without rewinding.
        const counted = f.inFlight.get(ev.partNumber) ?? 0;
        const wire = ev.wireBytes ?? ev.size;
        this.addTransferred(f, wire - counted, now);
        f.plainDone += ev.size;
        this.bytesPlainDone += ev.size;
        if (wire < ev.size) f.compressionSaved += ev.size - wire;
        f.inFlight.delete(ev.partNumber);
        f.finished.add(ev.partNumber);
        this.partsTransferred += 1;
        break;
      }
      case "part_retry":
        // The part stays in flight: it is waiting out its delay, not done.
        this.retries += 1;
        break;
      case "hashed":
        this.hashedBytes += ev.bytes;
        f.phaseHashed += ev.bytes;
        this.hashRate.add(ev.bytes, now);
        break;
      case "done":
        this.bytesCopied += ev.bytesCopied ?? 0;
        this.bytesReused += ev.bytesReused ?? 0;
        this.bytesCompressionSaved += ev.bytesCompressionSaved ?? f.compressionSaved;
        this.filesDone += 1;
        this.lastPhase = "done";
        this.drop(f, now, false);
        this.record({
          action: "sent",
          op: f.op,
          remote: f.remote,
          local: f.local,
          bytes: f.bytesTotal ?? 0,
          bytesTransferred: f.transferred,
          revision: ev.revision,
          contentHash: ev.contentHash,
          deduplicated: ev.deduplicated,
        });
        break;
      default: {
        // A new event type must be handled here; at run time it is ignored.
        const unhandled: never = ev;
        void unhandled;
      }
    }
  }

  /** A file leaves the in-flight set: done, or failed (its parts in flight no longer count). */
  private drop(f: FileState, now: number, failed: boolean): void {
    this.files.delete(f.key);
    if (failed) {
      // What it moved stays moved; what it had left is no longer to do.
      for (const b of f.inFlight.values()) this.bytesPlainDone += b;
      // One that failed before its "start" never added to the total: the plan's estimate keeps it.
      if (f.bytesTotal !== null) this.bytesAbandoned += Math.max(0, f.bytesTotal - f.bytesDone());
    }
    if (this.current === f) this.current = this.latest();
    // One file: the clock stops at its end. A run goes on between files, until its summary.
    if (this.files.size === 0 && !this.isRun) this.endedAt = now;
  }

  private latest(): FileState | null {
    let best: FileState | null = null;
    for (const f of this.files.values()) if (!best || f.order > best.order) best = f;
    return best;
  }

  private record(r: FileRecord): void {
    for (const l of this.listeners) l.fileEnded?.(r);
  }

  snapshot(): Snapshot {
    const now = this.now();
    const bytesTotal = this.totalBytes();
    this.shownDone = Math.min(Math.max(this.shownDone, this.bytesDone()), Math.max(bytesTotal, this.shownDone));
    const bytesDone = this.shownDone;
    const phase = this.phase();
    const rateBytesPerSec = phase === "done" ? 0 : this.rate.rate(now);
    const cur = this.current;
    const hashing = phase === "hash" || phase === "verify";
    const phaseRateBytesPerSec = hashing ? this.hashRate.rate(now) : 0;
    const phaseBytesTotal = hashing && cur ? cur.phaseTotal ?? cur.bytesTotal : null;
    const phaseHashedBytes = cur?.phaseHashed ?? 0;
    let partsInFlight = 0;
    const inFlight: FileProgress[] = [];
    for (const f of [...this.files.values()].sort((a, b) => a.order - b.order)) {
      partsInFlight += f.inFlight.size;
      inFlight.push({ file: f.key, op: f.op, name: f.name(), phase: f.phase, bytesDone: f.shown(), bytesTotal: f.bytesTotal, phaseProgress: f.phaseProgress() });
    }
    const filesTotal = this.filesTotal();
    return {
      op: this.op,
      remote: this.remote,
      local: this.local,
      phase,
      filesTotal,
      filesDone: this.filesDone,
      filesToDo: Math.max(0, filesTotal - this.filesDone - this.filesFailed),
      filesSkipped: this.filesSkipped,
      filesDeleted: this.filesDeleted,
      filesFailed: this.filesFailed,
      filesInFlight: inFlight,
      entriesScanned: this.scanned.local + this.scanned.remote,
      bytesTotal,
      bytesDone,
      bytesTransferred: this.bytesTransferred,
      bytesSkipped: this.bytesSkipped,
      bytesUnchanged: this.bytesUnchanged,
      partsTotal: this.partsTotal,
      partsDone: this.partsTransferred + this.partsSkipped,
      partsTransferred: this.partsTransferred,
      partsSkipped: this.partsSkipped,
      partsInFlight,
      retries: this.retries,
      hashedBytes: this.hashedBytes,
      phaseHashedBytes,
      phaseBytesTotal,
      percentDone: this.percentDone(bytesDone, bytesTotal, filesTotal),
      phaseProgress: hashing ? cur?.phaseProgress() ?? null : null,
      rateBytesPerSec,
      etaSeconds: this.eta(phase, bytesDone, bytesTotal, filesTotal, rateBytesPerSec),
      phaseRateBytesPerSec,
      phaseEtaSeconds: phaseEta(phaseBytesTotal, phaseHashedBytes, phaseRateBytesPerSec),
      elapsedMs: this.elapsed(now),
    };
  }

  summary(): Summary {
    const durationMs = this.elapsed(this.now());
    return {
      op: this.op,
      remote: this.remote,
      local: this.local,
      filesTotal: this.filesTotal(),
      filesDone: this.filesDone,
      filesSent: this.filesDone,
      filesSkipped: this.filesSkipped,
      filesDeleted: this.filesDeleted,
      filesFailed: this.filesFailed,
      // What was moved or tried: a plan's estimate has no place in what happened.
      bytesTotal: Math.max(0, this.bytesTotal - this.bytesAbandoned),
      bytesTransferred: this.bytesTransferred,
      bytesSkipped: this.bytesSkipped,
      bytesUnchanged: this.bytesUnchanged,
      bytesCopied: this.bytesCopied,
      bytesReused: this.bytesReused,
      bytesCompressionSaved: this.bytesCompressionSaved,
      partsTotal: this.partsTotal,
      partsTransferred: this.partsTransferred,
      partsSkipped: this.partsSkipped,
      retries: this.retries,
      hashedBytes: this.hashedBytes,
      durationMs,
      avgRateBytesPerSec: durationMs > 0 ? (this.bytesTransferred * 1000) / durationMs : 0,
    };
  }

  private phase(): Phase {
    if (this.current) return this.current.phase;
    if (this.filesStarted === 0 && this.files.size === 0) return this.lastPhase;
    // Between files of a run: done only once nothing planned is left.
    return this.filesTotal() - this.filesDone - this.filesFailed > 0 ? "transfer" : "done";
  }

  private filesTotal(): number {
    return Math.max(this.filesStarted, this.filesPlanned);
  }

  private totalBytes(): number {
    return Math.max(this.bytesTotal, this.bytesPlanned) - this.bytesAbandoned;
  }

  /** Plaintext done; a part in flight counts what it moved so far. */
  private bytesDone(): number {
    let inFlight = 0;
    for (const f of this.files.values()) for (const n of f.inFlight.values()) inFlight += n;
    return this.bytesPlainDone + this.bytesSkipped + inFlight;
  }

  private addTransferred(f: FileState, bytes: number, now: number): void {
    if (bytes === 0) return;
    f.transferred += bytes;
    this.bytesTransferred += bytes;
    this.rate.add(bytes, now);
  }

  private elapsed(now: number): number {
    return Math.max(0, (this.endedAt ?? now) - this.createdAt);
  }

  private percentDone(bytesDone: number, bytesTotal: number, filesTotal: number): number | null {
    if (filesTotal === 0) return null;
    // An empty file has nothing left to do.
    if (bytesTotal <= 0) return 1;
    return clamp01(bytesDone / bytesTotal);
  }

  private eta(phase: Phase, bytesDone: number, bytesTotal: number, filesTotal: number, rate: number): number | null {
    if (phase === "done") return 0;
    if (filesTotal === 0) return null;
    const remaining = bytesTotal - bytesDone;
    if (remaining <= 0) return 0;
    if (rate <= 0) return null;
    return remaining / rate;
  }
}

function phaseEta(total: number | null, done: number, rate: number): number | null {
  if (total === null) return null;
  const remaining = total - done;
  if (remaining <= 0) return 0;
  return rate > 0 ? remaining / rate : null;
}

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}
