import type { LocalRef } from "./local-sources.js";

/**
 * A verified chunk on its way out: its plaintext in memory (release, when
 * set, gives its buffer back once it is written), or (a chunk too big to
 * hold) already on disk at `fd`, `position`.
 */
export type Verified = { bytes: Buffer; release?: () => void } | { fd: number; position: number };

/**
 * What the window holds for a chunk: verified bytes, or where to read them
 * when their turn comes, checked then (a local file, or an earlier chunk of
 * the file being written). Read at their turn, local chunks cost no memory
 * while they wait.
 */
export type Pending = Verified | { local: LocalRef } | { copyFrom: number };

/** Takes chunks in file order, each exactly once; it may wait (a slow pipe) and may fail. */
export type OrderedSink = (index: number, chunk: Pending) => Promise<void> | void;

/** Gives back what a chunk holds when the window drops it unwritten (a failure, or a chunk delivered twice). */
export function dropPending(chunk: Pending): void {
  if ("bytes" in chunk) chunk.release?.();
}

/**
 * The reorder window between chunks that verify in any order and a sink
 * that takes them in file order: the whole-file hasher, the temporary
 * file's sequential writes, or stdout.
 *
 * The frontier is the first chunk the sink has not taken. A task may start
 * only once its bytes end within `windowBytes` of the frontier, or when it
 * holds the frontier itself; tasks are started in file order, so the task
 * holding the frontier always runs and the frontier always moves: no stall,
 * whatever finishes first. Everything held here lies between the frontier
 * and the end of the furthest task started, so memory stays under
 * windowBytes plus one task, whatever the file's size.
 */
export class OrderedWindow {
  private frontier = 0;
  private frontierOffset = 0;
  private readonly held = new Map<number, Pending>();
  private readonly waiters = new Set<() => void>();
  private draining = false;
  private failure: { err: unknown } | null = null;
  private readonly finished: Promise<void>;
  private settle!: { resolve: () => void; reject: (err: unknown) => void };

  constructor(
    /** Plaintext offset of each chunk, and the file's size after the last. */
    private readonly offsets: readonly number[],
    private readonly windowBytes: number,
    private readonly sink: OrderedSink,
  ) {
    this.finished = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.finished.catch(() => undefined); // observed by done(); not an unhandled rejection meanwhile
    if (offsets.length <= 1) this.settle.resolve();
  }

  /** Chunks the sink has taken: the first not yet taken. */
  get taken(): number {
    return this.frontier;
  }

  /** Waits until a task covering chunks [first, ...) and ending at byte `end` may start. */
  async room(first: number, end: number, signal: AbortSignal): Promise<void> {
    while (!(first <= this.frontier || end <= this.frontierOffset + this.windowBytes)) {
      this.check();
      await this.change(signal);
    }
    this.check();
  }

  /** Waits until the sink has taken chunk `index`. */
  async waitTaken(index: number, signal: AbortSignal): Promise<void> {
    while (this.frontier <= index) {
      this.check();
      await this.change(signal);
    }
  }

  /** Hands over chunk `index`, verified. A chunk handed over twice (a retry) is taken once. */
  deliver(index: number, chunk: Pending): void {
    if (this.failure || index < this.frontier || this.held.has(index)) {
      dropPending(chunk);
      this.check();
      return;
    }
    this.held.set(index, chunk);
    if (!this.draining) void this.drain();
  }

  /** What the window holds for chunk `index`, not yet taken. */
  peek(index: number): Pending | undefined {
    return this.held.get(index);
  }

  /** Swaps what the window holds for chunk `index` (a local chunk fetched after all); without one, drops `chunk`. */
  replace(index: number, chunk: Pending): void {
    const was = this.held.get(index);
    if (!was || this.failure) return dropPending(chunk);
    dropPending(was);
    this.held.set(index, chunk);
  }

  /** Resolves once the sink took every chunk; rejects with the sink's failure. */
  done(): Promise<void> {
    return this.finished;
  }

  /** Stops the window: waiters and later deliveries fail with err. */
  fail(err: unknown): void {
    if (this.failure) return;
    this.failure = { err };
    for (const chunk of this.held.values()) dropPending(chunk);
    this.held.clear();
    this.settle.reject(err);
    this.wake();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      const count = this.offsets.length - 1;
      for (let next = this.held.get(this.frontier); next && !this.failure; next = this.held.get(this.frontier)) {
        await this.sink(this.frontier, next);
        this.held.delete(this.frontier);
        this.frontier++;
        this.frontierOffset = this.offsets[this.frontier]!;
        this.wake();
        if (this.frontier === count) this.settle.resolve();
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.draining = false;
    }
  }

  private check(): void {
    if (this.failure) throw this.failure.err;
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private change(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        this.waiters.delete(done);
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        this.waiters.delete(done);
        reject(signal.reason);
      };
      this.waiters.add(done);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }
}
