import { AsyncLocalStorage } from "node:async_hooks";
import { getMaxListeners, setMaxListeners } from "node:events";

/**
 * A counting semaphore: the one concurrency limit a whole tree shares, across
 * files and parts. Waiters are served first come, first served, so a part
 * that started waiting before another never waits behind it (the pull's
 * reorder window relies on earlier chunks getting their turn first).
 */
export class Slots {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly size: number) {
    if (!(size >= 1)) throw new RangeError(`a pool needs at least one slot, not ${size}`);
    this.free = size;
  }

  /** Runs fn holding one slot; a waiter whose signal fires leaves the queue. */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.acquire(signal);
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  private acquire(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const wake = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(wake);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal!.reason);
      };
      // One listener per waiter, gone when it wakes: the queue's length, not a leak.
      if (signal && getMaxListeners(signal) < this.waiting.length + 32) setMaxListeners(this.waiting.length + 64, signal);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(wake);
    });
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next(); // the slot passes straight on
    else this.free++;
  }
}

/**
 * The pool a tree's transfers share. A tree runs each file's transfer inside
 * withSlots(pool, ...), and every runParallel under it (the parts of a large
 * push, the chunk GETs of a large pull) takes a slot from the pool for each
 * item, on top of its own lane count: the tree's limit holds across files
 * instead of multiplying per file. Carried by AsyncLocalStorage rather than
 * an option threaded through push-round.ts and transfer-chunks.ts, which keep
 * their signatures; outside withSlots, runParallel is as it always was.
 *
 * Only leaf transfers may hold a slot: the loop over files must not run
 * inside withSlots, or a file waiting for its parts would hold the slots the
 * parts wait for.
 */
const shared = new AsyncLocalStorage<Slots>();

export function withSlots<T>(slots: Slots, fn: () => Promise<T>): Promise<T> {
  return shared.run(slots, fn);
}

/** The pool in force here, if any. */
export function currentSlots(): Slots | undefined {
  return shared.getStore();
}

/**
 * Runs `worker` over items with at most `concurrency` at once (and, inside
 * withSlots, one slot of the shared pool each). The first failure aborts
 * the siblings (through the signal each worker gets) and is the error
 * thrown; nothing new starts after it.
 */
export async function runParallel<T>(
  items: readonly T[],
  concurrency: number,
  worker: (item: T, signal: AbortSignal) => Promise<void>,
  parent?: AbortSignal,
): Promise<void> {
  const slots = shared.getStore();
  const ctl = new AbortController();
  // Every request in flight listens on this signal, and so does each lane waiting for a shared slot: not a leak.
  setMaxListeners(Math.max(10, concurrency * 5), ctl.signal);
  const onParentAbort = () => ctl.abort(parent!.reason);
  parent?.addEventListener("abort", onParentAbort, { once: true });
  if (parent?.aborted) ctl.abort(parent.reason);
  let next = 0;
  let failure: { err: unknown } | null = null;
  const run = slots ? (item: T) => slots.run(() => worker(item, ctl.signal), ctl.signal) : (item: T) => worker(item, ctl.signal);
  const lane = async () => {
    while (!ctl.signal.aborted && next < items.length) {
      const item = items[next++]!;
      try {
        await run(item);
      } catch (err) {
        if (!failure) failure = { err: ctl.signal.aborted && parent?.aborted ? parent.reason : err };
        ctl.abort(err);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, lane));
  } finally {
    parent?.removeEventListener("abort", onParentAbort);
  }
  if (failure) throw (failure as { err: unknown }).err;
  parent?.throwIfAborted();
}
