import { setMaxListeners } from "node:events";

/**
 * Runs `worker` over items with at most `concurrency` at once. The first
 * failure aborts the siblings (through the signal each worker gets) and is
 * the error thrown; nothing new starts after it.
 */
export async function runParallel<T>(
  items: readonly T[],
  concurrency: number,
  worker: (item: T, signal: AbortSignal) => Promise<void>,
  parent?: AbortSignal,
): Promise<void> {
  const ctl = new AbortController();
  // Every request in flight listens on this signal; that is not a leak.
  setMaxListeners(Math.max(10, concurrency * 4), ctl.signal);
  const onParentAbort = () => ctl.abort(parent!.reason);
  parent?.addEventListener("abort", onParentAbort, { once: true });
  if (parent?.aborted) ctl.abort(parent.reason);
  let next = 0;
  let failure: { err: unknown } | null = null;
  const lane = async () => {
    while (!ctl.signal.aborted && next < items.length) {
      const item = items[next++]!;
      try {
        await worker(item, ctl.signal);
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
