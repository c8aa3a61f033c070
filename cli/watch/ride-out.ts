import { backoff, isRetryable, sleep } from "../rpc/retry.js";
import type { RunListener } from "../transfer/events.js";

/**
 * A watch outlives server restarts and lost connections: a round that fails
 * with an error worth another try is reported as a warning and tried again
 * after a growing delay (up to 10 s); any other error ends the watch.
 */
export class RideOut {
  private failures = 0;

  constructor(
    private readonly emit: RunListener,
    private readonly signal: AbortSignal,
  ) {}

  ok(): void {
    this.failures = 0;
  }

  /** Resolves after the delay when err is worth riding out (false once aborted); rethrows it otherwise. */
  async failed(err: unknown, what: string, worthRetry = isRetryable(err)): Promise<boolean> {
    if (this.signal.aborted) return false;
    if (!worthRetry) throw err;
    const delay = backoff(++this.failures, { baseDelayMs: 200, maxDelayMs: 10_000 });
    this.emit({ type: "warning", message: `${what}: ${(err as Error).message}; trying again in ${(delay / 1000).toFixed(1)} s` });
    await sleep(delay, this.signal).catch(() => undefined);
    return !this.signal.aborted;
  }
}
