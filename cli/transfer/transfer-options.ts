import { CliError } from "../errors.js";
import { backoff, sleep } from "../rpc/retry.js";
import type { TransferListener } from "./events.js";
import { PartHttpError } from "./part-http.js";

export interface TransferOptions {
  /** Parts in flight at once. */
  concurrency: number;
  /** Tries per part before the transfer fails. */
  partAttempts: number;
  signal: AbortSignal;
}

export const DEFAULT_CONCURRENCY = 6;

/** Tries per part, for every command and tree: 8 unless DRIVE_PART_ATTEMPTS gives another whole number from 1 to 100 (README, "Configuration"). */
export const DEFAULT_PART_ATTEMPTS = partAttempts();

export function partAttempts(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.DRIVE_PART_ATTEMPTS);
  return Number.isInteger(n) && n >= 1 && n <= 100 ? n : 8;
}

/** Tries for a part the store answered with wrong bytes: a proxy's hiccup gets another go, a store that lies is not asked for long. */
const UNTRUSTED_ATTEMPTS = 3;

/**
 * Moves one part, trying again with backoff when the store is busy, the
 * connection drops or the URL expired. Progress a failed try reported is
 * taken back, so the totals never count a byte twice.
 */
export async function sendWithRetry<T>(
  opts: TransferOptions,
  partNumber: number,
  emit: TransferListener,
  signal: AbortSignal,
  attempt: (onBytes: (n: number) => void) => Promise<T>,
): Promise<T> {
  for (let tryNo = 1; ; tryNo++) {
    let moved = 0;
    try {
      return await attempt((n) => {
        moved += n;
        emit({ type: "progress", partNumber, bytes: n });
      });
    } catch (err) {
      if (moved) emit({ type: "progress", partNumber, bytes: -moved });
      const untrusted = err instanceof PartHttpError && err.kind === "untrusted";
      const retryable = err instanceof PartHttpError && (err.kind === "retryable" || err.kind === "expired" || untrusted);
      const attempts = untrusted ? Math.min(UNTRUSTED_ATTEMPTS, opts.partAttempts) : opts.partAttempts;
      if (!retryable || tryNo >= attempts || signal.aborted) {
        // Wrong bytes and a changed file are integrity failures; the transfer says which.
        if (err instanceof PartHttpError && err.kind !== "mismatch" && !untrusted) {
          const tries = retryable && tryNo > 1 ? ` (gave up after ${tryNo} tries)` : "";
          throw new CliError(err.kind === "permanent" ? "internal" : "unavailable", `part ${partNumber}: ${err.message}${tries}`, { cause: err });
        }
        throw err;
      }
      // An expired URL is replaced at once; anything else waits its turn.
      const delayMs = err.kind === "expired" ? 0 : backoff(tryNo, { baseDelayMs: 250, maxDelayMs: 15_000 });
      emit({ type: "part_retry", partNumber, attempt: tryNo, reason: err.message, delayMs });
      await sleep(delayMs, signal);
    }
  }
}
