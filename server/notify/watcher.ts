import type { Change } from "../../gen/drive/v1/feed_pb.js";
import { DriveError } from "../errors.js";
import { ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import type { JournalRow } from "../journal/read-changes.js";

/** What the hub hands a watcher at the tail: entries with their Changes, mapped once for every watcher. */
export interface Batch {
  rows: readonly JournalRow[];
  changes: readonly Change[];
}

/** One queued step for the stream: changes to send, and the seq they bring it to. */
export interface Step {
  changes: Change[];
  seq: number;
}

/**
 * One WatchChanges stream's seat at the hub. Attached, the hub moves its
 * seq with every batch and queues the changes that pass its prefix; the
 * stream sends them. The queue is bounded: a stream that lets more than
 * `maxQueued` changes pile up is failed with SLOW_CONSUMER, and the memory
 * goes with it.
 */
export class Watcher {
  /** Entries up to here are queued or sent (attached), or read (behind). */
  seq: number;
  attached = false;
  private readonly queue: Step[] = [];
  private queued = 0;
  private failure: Error | null = null;
  private wakeup: (() => void) | null = null;

  constructor(
    readonly namespaceId: number,
    readonly userId: number,
    readonly prefix: string,
    seq: number,
    private readonly maxQueued: number,
  ) {
    this.seq = seq;
  }

  /** The hub's batch: the part after this watcher's seq, filtered by its prefix. */
  deliver(batch: Batch, newSeq: number): void {
    if (this.failure || newSeq <= this.seq) return;
    const changes: Change[] = [];
    for (let i = 0; i < batch.rows.length; i++) {
      const row = batch.rows[i]!;
      if (row.seq <= this.seq) continue;
      if (this.prefix && !row.path.startsWith(this.prefix) && !(row.from_path ?? "").startsWith(this.prefix)) continue;
      changes.push(batch.changes[i]!);
    }
    this.seq = newSeq;
    if (changes.length === 0) return this.poke();
    this.queued += changes.length;
    if (this.queued > this.maxQueued) return this.fail(slowConsumer(this.maxQueued));
    this.queue.push({ changes, seq: newSeq });
    this.poke();
  }

  /** Ends the stream with this error at its next step. The first failure wins. */
  fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.queue.length = 0;
    this.queued = 0;
    this.poke();
  }

  /** The next queued step, or null when none came within `ms` (or the signal fired); throws the failure. */
  async next(ms: number, signal: AbortSignal): Promise<Step | null> {
    if (!this.failure && this.queue.length === 0 && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          this.wakeup = null;
          resolve();
        };
        const timer = setTimeout(done, ms);
        signal.addEventListener("abort", done);
        this.wakeup = done;
      });
    }
    if (this.failure) throw this.failure;
    const step = this.queue.shift() ?? null;
    if (step) this.queued -= step.changes.length;
    return step;
  }

  get pending(): number {
    return this.queued;
  }

  private poke(): void {
    this.wakeup?.();
  }
}

export function slowConsumer(max: number): DriveError {
  return new DriveError("resource_exhausted", `the stream fell more than ${max} changes behind and was cut off; watch again from the last cursor received`, {
    info: { reason: ErrorReason.SLOW_CONSUMER },
  });
}
