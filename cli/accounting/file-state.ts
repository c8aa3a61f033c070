import type { Op, Phase } from "./types.js";

/**
 * One file's accounting while it is in flight: its parts, keyed by part
 * number within this file alone (files of a run overlap, and each numbers
 * its parts from 1). Accounting keeps one per RunEvent.file and drops it when
 * the file is done or failed.
 */
export class FileState {
  op: Op | null = null;
  remote = "";
  local = "";
  phase: Phase = "idle";
  /** Set by "start"; null while hashing before it. */
  bytesTotal: number | null = null;
  bytesSkipped = 0;
  /** Plaintext of this file's finished parts. */
  plainDone = 0;
  /** Compression's saving on finished parts, for a "done" that does not say. */
  compressionSaved = 0;
  /** Wire bytes counted for this file, for its per-file record. */
  transferred = 0;
  phaseHashed = 0;
  /** What the current hash or verify phase reads, when the phase said. */
  phaseTotal: number | null = null;
  /** The most bytesDone ever reported for this file: what it shows never goes back. */
  shownDone = 0;
  /** Bytes counted so far for each started, unfinished part. */
  readonly inFlight = new Map<number, number>();
  /** Finished parts, so a repeated part_done counts once. */
  readonly finished = new Set<number>();

  constructor(readonly key: number, readonly order: number) {}

  /** Plaintext done: finished parts, skipped ones, and what parts in flight moved so far. */
  bytesDone(): number {
    let n = this.plainDone + this.bytesSkipped;
    for (const b of this.inFlight.values()) n += b;
    return n;
  }

  /** bytesDone, held at its high-water mark. */
  shown(): number {
    this.shownDone = Math.max(this.shownDone, this.bytesDone());
    return this.shownDone;
  }

  /** 0..1 of a hash or verify phase, or null when not in one or its size is unknown. */
  phaseProgress(): number | null {
    if (this.phase !== "hash" && this.phase !== "verify") return null;
    const total = this.phaseTotal ?? this.bytesTotal;
    if (total === null) return null;
    if (total <= 0) return 1;
    return Math.min(1, Math.max(0, this.phaseHashed / total));
  }

  /** The source as the user named it. */
  name(): string {
    if (this.op === "pull") return this.remote || this.local;
    return this.local && this.local !== "-" ? this.local : this.remote;
  }
}
