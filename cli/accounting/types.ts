/**
 * What accounting hands the printers: snapshots on their clock, a summary at
 * the end, and a record as each file of a run ends. Printers read these and
 * never see transfer events.
 */

export type Op = "push" | "pull";

/**
 * "idle" until the first event; "done" once every file started is done and
 * no plan is left. The others are a file's own phases. A "start" event enters
 * "transfer", because a transfer that announces no phases is transferring.
 */
export type Phase = "idle" | "hash" | "transfer" | "verify" | "commit" | "done";

/** One file in flight, for the views that list them. */
export interface FileProgress {
  /** The run's key for it (RunEvent.file). */
  readonly file: number;
  /** null while it hashes before its "start". */
  readonly op: Op | null;
  /** The source path as the user named it: local for a push, remote for a pull. */
  readonly name: string;
  readonly phase: Phase;
  /** Plaintext done, never less than a snapshot before showed. */
  readonly bytesDone: number;
  /** null before its "start". */
  readonly bytesTotal: number | null;
  /** 0..1 of a hash or verify phase, when its size is known; else null. */
  readonly phaseProgress: number | null;
}

export interface Snapshot {
  /** Of the latest started transfer; null before any started (and for a run that moved nothing). */
  readonly op: Op | null;
  readonly remote: string;
  readonly local: string;
  /** The latest started file's phase while one is in flight. */
  readonly phase: Phase;
  /** Files started, or planned (tree_plan) when the plan says more. */
  readonly filesTotal: number;
  /** Files whose transfer finished. */
  readonly filesDone: number;
  /** filesTotal minus those done or failed. */
  readonly filesToDo: number;
  readonly filesSkipped: number;
  readonly filesDeleted: number;
  readonly filesFailed: number;
  /** Started and not yet done, in the order they started. */
  readonly filesInFlight: readonly FileProgress[];
  /** Entries walked so far (tree_scan, both sides); 0 for one file. */
  readonly entriesScanned: number;
  /** Plaintext bytes of everything being moved (started, or planned when more). */
  readonly bytesTotal: number;
  /**
   * Plaintext bytes done: of finished parts, skipped ones, and what parts in
   * flight moved so far (counted as it crossed the wire, so a compressed
   * part catches up when it finishes). Never decreases from one snapshot to
   * the next, even when a retry or an interruption rewinds a part.
   */
  readonly bytesDone: number;
  /** Bytes that crossed the wire, after compression. */
  readonly bytesTransferred: number;
  /** Plaintext bytes that did not need to move: already stored, copied by the server, or already on disk. */
  readonly bytesSkipped: number;
  /** Bytes of the files skipped as unchanged. */
  readonly bytesUnchanged: number;
  readonly partsTotal: number;
  /** partsTransferred + partsSkipped. */
  readonly partsDone: number;
  readonly partsTransferred: number;
  readonly partsSkipped: number;
  readonly partsInFlight: number;
  readonly retries: number;
  /** Hashed in every phase and file so far. */
  readonly hashedBytes: number;
  /** Hashed by the current file since its phase began. */
  readonly phaseHashedBytes: number;
  /** What the current hash or verify phase reads in all, when known; else null. */
  readonly phaseBytesTotal: number | null;
  /** bytesDone / bytesTotal in 0..1; null before any transfer started or was planned. */
  readonly percentDone: number | null;
  /** How far the current hash or verify phase is, 0..1; null in other phases or when its size is unknown. */
  readonly phaseProgress: number | null;
  /** Transfer rate over the last few seconds (RateWindow), not since the start. */
  readonly rateBytesPerSec: number;
  /** null while nothing is moving, so there is no honest estimate. */
  readonly etaSeconds: number | null;
  /** Hashing rate over the last few seconds; what a hash or verify phase shows. */
  readonly phaseRateBytesPerSec: number;
  /** Time left in the current hash or verify phase, from the hashing rate; null when unknown. */
  readonly phaseEtaSeconds: number | null;
  /** Since the Accounting was made; stops while nothing is left in flight after a "done". */
  readonly elapsedMs: number;
}

export interface Summary {
  readonly op: Op | null;
  readonly remote: string;
  readonly local: string;
  readonly filesTotal: number;
  readonly filesDone: number;
  /** Files whose content was sent (or received): every "done", deduplicated ones included. */
  readonly filesSent: number;
  /** Files not transferred (file_skipped), unchanged ones included. */
  readonly filesSkipped: number;
  readonly filesDeleted: number;
  readonly filesFailed: number;
  readonly bytesTotal: number;
  /** Bytes that crossed the wire, after compression. */
  readonly bytesTransferred: number;
  /** Plaintext bytes that did not move (they include bytesCopied and bytesReused). */
  readonly bytesSkipped: number;
  /** Bytes of the files skipped as unchanged (not part of bytesTotal). */
  readonly bytesUnchanged: number;
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

/** How one file of a run ended, as the per-file lines show it. */
export type FileRecord =
  | {
      readonly action: "sent";
      readonly op: Op | null;
      readonly remote: string;
      readonly local: string;
      /** Plaintext size. */
      readonly bytes: number;
      /** Bytes that crossed the wire for it. */
      readonly bytesTransferred: number;
      readonly revision: number;
      readonly contentHash: string;
      readonly deduplicated: boolean;
    }
  | { readonly action: "skipped"; readonly path: string; readonly bytes: number; readonly reason: string }
  | { readonly action: "deleted"; readonly path: string }
  | { readonly action: "failed"; readonly path: string; readonly message: string; readonly code: string };

/** What a printer hears from accounting as it happens, besides its own snapshots. */
export interface AccountingListener {
  fileEnded?(record: FileRecord): void;
  warning?(message: string, path?: string): void;
  /** Two-way sync: an operation planned or ended, or the guard's halt (passed on as they came). */
  sync?(event: SyncEvent): void;
}

/** The RunEvents of two-way sync, which accounting passes on to the printers. */
export type SyncEvent = Extract<import("../transfer/events.js").RunEvent, { type: "sync_op" | "sync_halt" }>;
