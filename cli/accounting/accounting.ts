import type { TransferEvent } from "../transfer/events.js";
import { RateWindow } from "./rate-window.js";

/**
 * Accounting: the middle of transfer -> accounting -> rendering.
 *
 * Transfers emit TransferEvents and know nothing of screens; printers read
 * snapshots and know nothing of parts or retries. This class is the only
 * place that turns the one into the other (rclone's StatsInfo, restic's
 * progress.Updater), so every printer shows the same numbers.
 *
 * It sums over every transfer it is fed. Today a command runs one file; a
 * command that runs several files one after another can feed them all to one
 * Accounting and get totals. Transfers must not overlap: part numbers and the
 * in-flight set belong to the current file, and a "start" event begins a new
 * one.
 */

export type Op = "push" | "pull";

/**
 * "idle" until the first event; "done" after a "done" event. The others are
 * the transfer's own phases. A "start" event enters "transfer", because a
 * transfer that announces no phases is transferring.
 */
export type Phase = "idle" | "hash" | "transfer" | "verify" | "commit" | "done";

export interface Snapshot {
  /** Of the current (latest started) transfer; null before any started. */
  readonly op: Op | null;
  readonly remote: string;
  readonly local: string;
  readonly phase: Phase;
  /** Transfers started and finished. */
  readonly filesTotal: number;
  readonly filesDone: number;
  /** Plaintext bytes of everything being moved. */
  readonly bytesTotal: number;
  /**
   * Plaintext bytes done: of finished parts, skipped ones, and what parts in
   * flight moved so far (counted as it crossed the wire, so a compressed
   * part catches up when it finishes). Reaches bytesTotal at the end.
   */
  readonly bytesDone: number;
  /** Bytes that crossed the wire, after compression. */
  readonly bytesTransferred: number;
  /** Plaintext bytes that did not need to move: already stored, copied by the server, or already on disk. */
  readonly bytesSkipped: number;
  readonly partsTotal: number;
  /** partsTransferred + partsSkipped. */
  readonly partsDone: number;
  readonly partsTransferred: number;
  readonly partsSkipped: number;
  readonly partsInFlight: number;
  readonly retries: number;
  /** Hashed in every phase and transfer so far. */
  readonly hashedBytes: number;
  /** Hashed since the current phase began. */
  readonly phaseHashedBytes: number;
  /** bytesDone / bytesTotal in 0..1; null before any transfer started. */
  readonly percentDone: number | null;
  /**
   * How far the current hash or verify phase is, 0..1: it reads the whole
   * current file. null in other phases, or when the file's size is not known
   * yet (hashing before "start").
   */
  readonly phaseProgress: number | null;
  /** Over the last few seconds (RateWindow), not since the start. */
  readonly rateBytesPerSec: number;
  /** null while nothing is moving, so there is no honest estimate. */
  readonly etaSeconds: number | null;
  /** Since the Accounting was made; stops at the last "done". */
  readonly elapsedMs: number;
}

export interface Summary {
  readonly op: Op | null;
  readonly remote: string;
  readonly local: string;
  readonly filesTotal: number;
  readonly filesDone: number;
  readonly bytesTotal: number;
  /** Bytes that crossed the wire, after compression. */
  readonly bytesTransferred: number;
  /** Plaintext bytes that did not move (they include bytesCopied and bytesReused). */
  readonly bytesSkipped: number;
  /** Push: plaintext bytes the server filled by copying what it stored already. */
  readonly bytesCopied: number;
  /** Pull: plaintext bytes taken from local files instead of the network. */
  readonly bytesReused: number;
  /** Plaintext bytes of the parts that moved, minus the bytes that carried them. */
  readonly bytesCompressionSaved: number;
  readonly partsTotal: number;
  readonly partsTransferred: number;
  readonly partsSkipped: number;
  readonly retries: number;
  readonly hashedBytes: number;
  readonly durationMs: number;
  /**
   * bytesTransferred / durationMs: the whole command's wall time, so that
   * "1.0 GiB in 4.8s, 213.3 MiB/s" adds up for the reader.
   */
  readonly avgRateBytesPerSec: number;
}

export interface AccountingOptions {
  /** Monotonic clock in milliseconds. Default performance.now; tests inject one. */
  now: () => number;
  /** Width of the rate window. Default 5000 ms. */
  rateWindowMs: number;
}

export class Accounting {
  private readonly now: () => number;
  private readonly rate: RateWindow;
  /** The clock starts when the command makes its Accounting, so durations include setup. */
  private readonly createdAt: number;
  private endedAt: number | null = null;

  private op: Op | null = null;
  private remote = "";
  private local = "";
  private phase: Phase = "idle";
  private filesTotal = 0;
  private filesDone = 0;
  private bytesTotal = 0;
  private bytesTransferred = 0;
  private bytesSkipped = 0;
  /** Plaintext of finished parts, so that bytesDone reaches bytesTotal whatever compression did. */
  private bytesPlainDone = 0;
  private bytesCopied = 0;
  private bytesReused = 0;
  private bytesCompressionSaved = 0;
  /** Compression's saving on the current file's finished parts, for a "done" that does not say. */
  private fileCompressionSaved = 0;
  private partsTotal = 0;
  private partsTransferred = 0;
  private partsSkipped = 0;
  private retries = 0;
  private hashedBytes = 0;
  private phaseHashedBytes = 0;
  /** Size of the current file, for phaseProgress; null until its "start". */
  private fileBytesTotal: number | null = null;
  /** Bytes counted so far for each started, unfinished part of the current file. */
  private readonly inFlight = new Map<number, number>();
  /** Finished parts of the current file, so a repeated part_done counts once. */
  private readonly finished = new Set<number>();

  constructor(options: Partial<AccountingOptions> = {}) {
    this.now = options.now ?? (() => performance.now());
    this.rate = new RateWindow(options.rateWindowMs === undefined ? {} : { windowMs: options.rateWindowMs });
    this.createdAt = this.now();
  }

  /** Feed one event. An arrow property, so it can be passed as a TransferListener unbound. */
  readonly onEvent = (ev: TransferEvent): void => {
    const now = this.now();
    switch (ev.type) {
      case "start":
        this.op = ev.op;
        this.remote = ev.remote;
        this.local = ev.local;
        this.phase = "transfer";
        this.endedAt = null;
        this.filesTotal += 1;
        this.bytesTotal += ev.bytesTotal;
        this.bytesSkipped += ev.bytesSkipped;
        this.partsTotal += ev.partsTotal;
        this.partsSkipped += ev.partsSkipped;
        this.fileBytesTotal = ev.bytesTotal;
        this.fileCompressionSaved = 0;
        this.inFlight.clear();
        this.finished.clear();
        break;
      case "phase":
        this.phase = ev.phase;
        this.phaseHashedBytes = 0;
        break;
      case "part_start":
        // The rate's clock starts with the first part, not with the first
        // progress report, which arrives after some bytes already moved.
        this.rate.begin(now);
        if (!this.finished.has(ev.partNumber) && !this.inFlight.has(ev.partNumber)) {
          this.inFlight.set(ev.partNumber, 0);
        }
        break;
      case "progress":
        // A late report for a finished part was already settled by part_done.
        if (this.finished.has(ev.partNumber)) break;
        this.inFlight.set(ev.partNumber, (this.inFlight.get(ev.partNumber) ?? 0) + ev.bytes);
        this.addTransferred(ev.bytes, now);
        break;
      case "part_done": {
        if (this.finished.has(ev.partNumber)) break;
        // part_done is authoritative: wireBytes (else size) settles whatever
        // the progress reports added up to, whether the transfer sent none,
        // or over-counted a retry without rewinding.
        const counted = this.inFlight.get(ev.partNumber) ?? 0;
        const wire = ev.wireBytes ?? ev.size;
        this.addTransferred(wire - counted, now);
        this.bytesPlainDone += ev.size;
        if (wire < ev.size) this.fileCompressionSaved += ev.size - wire;
        this.inFlight.delete(ev.partNumber);
        this.finished.add(ev.partNumber);
        this.partsTransferred += 1;
        break;
      }
      case "part_retry":
        // The part stays in flight: it is waiting out its delay, not done.
        this.retries += 1;
        break;
      case "hashed":
        this.hashedBytes += ev.bytes;
        this.phaseHashedBytes += ev.bytes;
        break;
      case "done":
        this.bytesCopied += ev.bytesCopied ?? 0;
        this.bytesReused += ev.bytesReused ?? 0;
        this.bytesCompressionSaved += ev.bytesCompressionSaved ?? this.fileCompressionSaved;
        this.fileCompressionSaved = 0;
        this.phase = "done";
        this.filesDone += 1;
        this.endedAt = now;
        this.inFlight.clear();
        break;
      default: {
        // A new event type must be handled here; at run time it is ignored.
        const unhandled: never = ev;
        void unhandled;
      }
    }
  };

  snapshot(): Snapshot {
    const now = this.now();
    const bytesDone = this.bytesDone();
    const rateBytesPerSec = this.phase === "done" ? 0 : this.rate.rate(now);
    return {
      op: this.op,
      remote: this.remote,
      local: this.local,
      phase: this.phase,
      filesTotal: this.filesTotal,
      filesDone: this.filesDone,
      bytesTotal: this.bytesTotal,
      bytesDone,
      bytesTransferred: this.bytesTransferred,
      bytesSkipped: this.bytesSkipped,
      partsTotal: this.partsTotal,
      partsDone: this.partsTransferred + this.partsSkipped,
      partsTransferred: this.partsTransferred,
      partsSkipped: this.partsSkipped,
      partsInFlight: this.inFlight.size,
      retries: this.retries,
      hashedBytes: this.hashedBytes,
      phaseHashedBytes: this.phaseHashedBytes,
      percentDone: this.percentDone(bytesDone),
      phaseProgress: this.phaseProgress(),
      rateBytesPerSec,
      etaSeconds: this.eta(bytesDone, rateBytesPerSec),
      elapsedMs: this.elapsed(now),
    };
  }

  summary(): Summary {
    const durationMs = this.elapsed(this.now());
    return {
      op: this.op,
      remote: this.remote,
      local: this.local,
      filesTotal: this.filesTotal,
      filesDone: this.filesDone,
      bytesTotal: this.bytesTotal,
      bytesTransferred: this.bytesTransferred,
      bytesSkipped: this.bytesSkipped,
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

  /** Plaintext done; a part in flight counts what it moved so far. */
  private bytesDone(): number {
    let inFlight = 0;
    for (const n of this.inFlight.values()) inFlight += n;
    return this.bytesPlainDone + this.bytesSkipped + inFlight;
  }

  private addTransferred(bytes: number, now: number): void {
    if (bytes === 0) return;
    this.bytesTransferred += bytes;
    this.rate.add(bytes, now);
  }

  private elapsed(now: number): number {
    return Math.max(0, (this.endedAt ?? now) - this.createdAt);
  }

  private percentDone(bytesDone: number): number | null {
    if (this.filesTotal === 0) return null;
    // An empty file has nothing left to do.
    if (this.bytesTotal <= 0) return 1;
    return clamp01(bytesDone / this.bytesTotal);
  }

  private phaseProgress(): number | null {
    if (this.phase !== "hash" && this.phase !== "verify") return null;
    if (this.fileBytesTotal === null) return null;
    if (this.fileBytesTotal <= 0) return 1;
    return clamp01(this.phaseHashedBytes / this.fileBytesTotal);
  }

  private eta(bytesDone: number, rate: number): number | null {
    if (this.phase === "done") return 0;
    if (this.filesTotal === 0) return null;
    const remaining = this.bytesTotal - bytesDone;
    if (remaining <= 0) return 0;
    if (rate <= 0) return null;
    return remaining / rate;
  }
}

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}
