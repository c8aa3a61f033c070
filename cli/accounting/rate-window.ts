/**
 * Bytes per second over the last few seconds, not since the start.
 *
 * A rate since the start says little on a long transfer: a stall at the 90%
 * mark keeps showing the old speed, and the ETA never moves. rclone's
 * StatsInfo and restic's progress both smooth over a recent window instead.
 * This keeps a ring of fixed-width time buckets; a bucket is reused (and
 * zeroed) when the clock has moved a whole window past it, so memory is fixed
 * however long the transfer runs and however many events it sends.
 *
 * Time is passed in by the caller (milliseconds, from one monotonic clock), so
 * tests drive it without sleeping.
 */
export interface RateWindowOptions {
  /** How far back the rate looks. Default 5000 ms. */
  windowMs: number;
  /** Resolution of the window. Default 250 ms. */
  bucketMs: number;
}

const DEFAULTS: RateWindowOptions = { windowMs: 5000, bucketMs: 250 };

interface Bucket {
  slot: number;
  bytes: number;
}

export class RateWindow {
  private readonly bucketMs: number;
  private readonly buckets: Bucket[];
  private startedAt: number | null = null;

  constructor(options: Partial<RateWindowOptions> = {}) {
    const { windowMs, bucketMs } = { ...DEFAULTS, ...options };
    if (!(bucketMs > 0) || !(windowMs >= bucketMs)) {
      throw new RangeError(`RateWindow: need windowMs >= bucketMs > 0, got ${windowMs}, ${bucketMs}`);
    }
    this.bucketMs = bucketMs;
    // One more than a window's worth, because the newest bucket is only partly
    // elapsed: full buckets then always cover at least windowMs.
    const count = Math.ceil(windowMs / bucketMs) + 1;
    this.buckets = Array.from({ length: count }, () => ({ slot: Number.NEGATIVE_INFINITY, bytes: 0 }));
  }

  /**
   * Marks when bytes began to move. Without it, the first second of a
   * transfer would be averaged over the whole window and read far too low.
   * Only the first call counts; add() calls it too.
   */
  begin(now: number): void {
    if (this.startedAt === null) this.startedAt = now;
  }

  /** Records bytes moved at `now`. Negative bytes (a retry rewinding) subtract. */
  add(bytes: number, now: number): void {
    this.begin(now);
    const slot = this.slotOf(now);
    const bucket = this.buckets[mod(slot, this.buckets.length)]!;
    if (bucket.slot !== slot) {
      bucket.slot = slot;
      bucket.bytes = 0;
    }
    bucket.bytes += bytes;
  }

  /**
   * Bucket k holds the times (k*bucketMs, (k+1)*bucketMs]. Bytes reported at
   * t moved before t, so a report exactly on a boundary belongs to the bucket
   * that ends there; the other way, the window would read one report too many.
   */
  private slotOf(t: number): number {
    return Math.ceil(t / this.bucketMs) - 1;
  }

  /** Bytes per second over the window ending at `now`; 0 before anything moved. */
  rate(now: number): number {
    if (this.startedAt === null) return 0;
    const newest = this.slotOf(now);
    const oldest = newest - this.buckets.length + 1;
    let sum = 0;
    for (const b of this.buckets) {
      if (b.slot >= oldest && b.slot <= newest) sum += b.bytes;
    }
    if (sum <= 0) return 0;
    const from = Math.max(oldest * this.bucketMs, this.startedAt);
    // At least one bucket of time: a megabyte reported 1 ms after the start
    // would otherwise read as a gigabyte per second.
    const spanMs = Math.max(now - from, this.bucketMs);
    return (sum * 1000) / spanMs;
  }
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}
