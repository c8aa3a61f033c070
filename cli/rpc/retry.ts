import { Code, ConnectError } from "@connectrpc/connect";
import { isTransientError } from "../../shared/io/transient-errors.js";

/** Codes worth another try: the same call may work later. Everything else is permanent. */
const RETRYABLE = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.ResourceExhausted, Code.Aborted]);

export function isRetryable(err: unknown): boolean {
  if (err instanceof ConnectError) return RETRYABLE.has(err.code);
  return isTransientError(err);
}

export interface RetryOptions {
  attempts: number;
  /** First delay; doubles each time, with jitter, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  signal?: AbortSignal;
  onRetry?: (attempt: number, err: unknown, delayMs: number) => void;
}

export const defaultRetry: RetryOptions = { attempts: 6, baseDelayMs: 200, maxDelayMs: 10_000 };

/** Runs fn until it succeeds, fails permanently, or runs out of attempts. */
export async function withRetry<T>(
  fn: () => Promise<T>,
  opts: RetryOptions = defaultRetry,
  retryable: (err: unknown) => boolean = isRetryable,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= opts.attempts || !retryable(err) || opts.signal?.aborted) throw err;
      const delay = backoff(attempt, opts);
      opts.onRetry?.(attempt, err, delay);
      await sleep(delay, opts.signal);
    }
  }
}

export function backoff(attempt: number, opts: Pick<RetryOptions, "baseDelayMs" | "maxDelayMs">): number {
  const ceiling = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2); // "equal jitter"
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
