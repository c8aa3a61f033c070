/**
 * Bytes per second of a kind of work that runs several at a time (part
 * PUTs, compressions): the bytes of the last few operations over the wall
 * time during which at least one of them ran. Six PUTs of 16 MiB that
 * overlap in one second give 96 MiB/s, the rate the link sustains, not the
 * 16 MiB/s each saw; idle gaps between operations do not dilute it.
 */
export class Throughput {
  private readonly ops: Array<{ start: number; end: number; bytes: number }> = [];

  constructor(
    /** Recent operations kept: enough to smooth one slow PUT, few enough to follow a change of link. */
    private readonly keep = 16,
  ) {}

  /** One operation of `bytes` that ran from `start` to `end` (ms, same clock). */
  add(bytes: number, start: number, end: number): void {
    if (!(end >= start) || bytes <= 0) return;
    this.ops.push({ start, end, bytes });
    if (this.ops.length > this.keep) this.ops.shift();
  }

  /** Bytes per second, or null before any operation finished. */
  rate(): number | null {
    if (!this.ops.length) return null;
    const spans = [...this.ops].sort((a, b) => a.start - b.start);
    let busy = 0;
    let from = spans[0]!.start;
    let to = spans[0]!.end;
    let bytes = 0;
    for (const s of spans) {
      bytes += s.bytes;
      if (s.start > to) {
        busy += to - from;
        from = s.start;
        to = s.end;
      } else to = Math.max(to, s.end);
    }
    busy += to - from;
    // A sub-millisecond run (tiny parts on a fast clock) still gives a finite rate.
    return (bytes * 1000) / Math.max(busy, 0.05);
  }
}
