import { describe, expect, it } from "vitest";
import { Accounting } from "../../cli/accounting/accounting.js";
import { RateWindow } from "../../cli/accounting/rate-window.js";
import type { TransferEvent, TransferListener } from "../../cli/transfer/events.js";

const MiB = 1024 * 1024;

/** A clock the test moves by hand. */
function fakeClock(start = 1000) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

function startEvent(over: Partial<Extract<TransferEvent, { type: "start" }>> = {}): TransferEvent {
  return {
    type: "start",
    op: "push",
    remote: "/backups/big.iso",
    local: "./big.iso",
    bytesTotal: 40 * MiB,
    partsTotal: 4,
    bytesSkipped: 0,
    partsSkipped: 0,
    ...over,
  };
}

/**
 * Reports and buckets need not line up, so a windowed rate is off by up to one
 * report per window: 100 ms in 5 s.
 */
function expectRate(actual: number, expected: number) {
  expect(Math.abs(actual - expected) / expected).toBeLessThan(0.03);
}

/** Sends `bytesPerSec` through part 1 for `seconds`, in 100 ms steps. */
function stream(acc: Accounting, clock: ReturnType<typeof fakeClock>, bytesPerSec: number, seconds: number, part = 1) {
  for (let i = 0; i < seconds * 10; i++) {
    clock.advance(100);
    acc.onEvent({ type: "progress", partNumber: part, bytes: bytesPerSec / 10 });
  }
}

describe("Accounting", () => {
  it("is idle, with nothing known, before any event", () => {
    const clock = fakeClock();
    const acc = new Accounting({ now: clock.now });
    clock.advance(250);
    const s = acc.snapshot();
    expect(s).toMatchObject({
      op: null,
      phase: "idle",
      bytesTotal: 0,
      bytesDone: 0,
      percentDone: null,
      etaSeconds: null,
      rateBytesPerSec: 0,
      elapsedMs: 250,
    });
  });

  it("can be passed unbound as a TransferListener", () => {
    const acc = new Accounting({ now: fakeClock().now });
    const listener: TransferListener = acc.onEvent;
    listener(startEvent());
    expect(acc.snapshot().op).toBe("push");
  });

  it("takes totals and skipped work from start", () => {
    const acc = new Accounting({ now: fakeClock().now });
    acc.onEvent(startEvent({ bytesTotal: 100, partsTotal: 10, bytesSkipped: 30, partsSkipped: 3 }));
    const s = acc.snapshot();
    expect(s).toMatchObject({
      op: "push",
      remote: "/backups/big.iso",
      local: "./big.iso",
      phase: "transfer",
      filesTotal: 1,
      filesDone: 0,
      bytesTotal: 100,
      bytesSkipped: 30,
      bytesTransferred: 0,
      bytesDone: 30,
      partsTotal: 10,
      partsSkipped: 3,
      partsTransferred: 0,
      partsDone: 3,
      percentDone: 0.3,
    });
  });

  it("counts progress, parts in flight and finished parts", () => {
    const acc = new Accounting({ now: fakeClock().now });
    acc.onEvent(startEvent({ bytesTotal: 30, partsTotal: 3 }));
    acc.onEvent({ type: "part_start", partNumber: 1, size: 10 });
    acc.onEvent({ type: "part_start", partNumber: 2, size: 10 });
    acc.onEvent({ type: "progress", partNumber: 1, bytes: 4 });
    acc.onEvent({ type: "progress", partNumber: 2, bytes: 6 });
    expect(acc.snapshot()).toMatchObject({ bytesTransferred: 10, partsInFlight: 2, partsTransferred: 0 });

    acc.onEvent({ type: "progress", partNumber: 1, bytes: 6 });
    acc.onEvent({ type: "part_done", partNumber: 1, size: 10 });
    expect(acc.snapshot()).toMatchObject({ bytesTransferred: 16, partsInFlight: 1, partsTransferred: 1 });
  });

  it("settles a part to its size on part_done, with or without progress reports", () => {
    const acc = new Accounting({ now: fakeClock().now });
    acc.onEvent(startEvent({ bytesTotal: 30, partsTotal: 3 }));
    // No progress at all: part_done alone counts the bytes.
    acc.onEvent({ type: "part_start", partNumber: 1, size: 10 });
    acc.onEvent({ type: "part_done", partNumber: 1, size: 10 });
    // Over-counted (a retry that did not rewind): part_done corrects it.
    acc.onEvent({ type: "part_start", partNumber: 2, size: 10 });
    acc.onEvent({ type: "progress", partNumber: 2, bytes: 7 });
    acc.onEvent({ type: "progress", partNumber: 2, bytes: 10 });
    acc.onEvent({ type: "part_done", partNumber: 2, size: 10 });
    expect(acc.snapshot()).toMatchObject({ bytesTransferred: 20, partsTransferred: 2, partsInFlight: 0 });
  });

  it("follows a retry that rewinds, keeping the part in flight", () => {
    const acc = new Accounting({ now: fakeClock().now });
    acc.onEvent(startEvent({ bytesTotal: 10, partsTotal: 1 }));
    acc.onEvent({ type: "part_start", partNumber: 1, size: 10 });
    acc.onEvent({ type: "progress", partNumber: 1, bytes: 7 });
    acc.onEvent({ type: "part_retry", partNumber: 1, attempt: 1, reason: "ECONNRESET", delayMs: 500 });
    acc.onEvent({ type: "progress", partNumber: 1, bytes: -7 });
    expect(acc.snapshot()).toMatchObject({ bytesTransferred: 0, retries: 1, partsInFlight: 1 });

    acc.onEvent({ type: "part_start", partNumber: 1, size: 10 });
    acc.onEvent({ type: "progress", partNumber: 1, bytes: 10 });
    acc.onEvent({ type: "part_done", partNumber: 1, size: 10 });
    expect(acc.snapshot()).toMatchObject({ bytesTransferred: 10, retries: 1, partsInFlight: 0, partsTransferred: 1 });
  });

  it("counts a repeated part_done once and ignores late progress", () => {
    const acc = new Accounting({ now: fakeClock().now });
    acc.onEvent(startEvent({ bytesTotal: 10, partsTotal: 1 }));
    acc.onEvent({ type: "part_start", partNumber: 1, size: 10 });
    acc.onEvent({ type: "part_done", partNumber: 1, size: 10 });
    acc.onEvent({ type: "part_done", partNumber: 1, size: 10 });
    acc.onEvent({ type: "progress", partNumber: 1, bytes: 3 });
    expect(acc.snapshot()).toMatchObject({ bytesTransferred: 10, partsTransferred: 1, percentDone: 1 });
  });

  it("reports a rate over the last few seconds, not since the start", () => {
    const clock = fakeClock();
    const acc = new Accounting({ now: clock.now });
    acc.onEvent(startEvent({ bytesTotal: 1000 * MiB }));
    acc.onEvent({ type: "part_start", partNumber: 1, size: 1000 * MiB });
    stream(acc, clock, 10 * MiB, 10);
    expectRate(acc.snapshot().rateBytesPerSec, 10 * MiB);

    stream(acc, clock, 20 * MiB, 6);
    // Since the start it would be 220 MiB / 16 s = 13.75 MiB/s.
    expectRate(acc.snapshot().rateBytesPerSec, 20 * MiB);
  });

  it("decays the rate to zero on a stall, and then has no ETA", () => {
    const clock = fakeClock();
    const acc = new Accounting({ now: clock.now });
    acc.onEvent(startEvent({ bytesTotal: 100 * MiB }));
    acc.onEvent({ type: "part_start", partNumber: 1, size: 100 * MiB });
    stream(acc, clock, 10 * MiB, 3);
    expect(acc.snapshot().etaSeconds).not.toBeNull();

    clock.advance(6000);
    const s = acc.snapshot();
    expect(s.rateBytesPerSec).toBe(0);
    expect(s.etaSeconds).toBeNull();
  });

  it("reads the early rate over the time since the first part, not over a whole window", () => {
    const clock = fakeClock();
    const acc = new Accounting({ now: clock.now });
    acc.onEvent(startEvent({ bytesTotal: 100 * MiB }));
    clock.advance(3000); // setup before any part: must not dilute the rate
    acc.onEvent({ type: "part_start", partNumber: 1, size: 100 * MiB });
    stream(acc, clock, 8 * MiB, 1);
    expectRate(acc.snapshot().rateBytesPerSec, 8 * MiB);
  });

  it("estimates the remaining time from the recent rate", () => {
    const clock = fakeClock();
    const acc = new Accounting({ now: clock.now });
    acc.onEvent(startEvent({ bytesTotal: 100 * MiB, bytesSkipped: 20 * MiB }));
    acc.onEvent({ type: "part_start", partNumber: 1, size: 80 * MiB });
    stream(acc, clock, 10 * MiB, 6);
    const s = acc.snapshot();
    expect(s.bytesDone).toBe(80 * MiB);
    // 20 MiB left at 10 MiB/s.
    expect(s.etaSeconds).not.toBeNull();
    expect(s.etaSeconds!).toBeGreaterThan(1.9);
    expect(s.etaSeconds!).toBeLessThan(2.1);
  });

  it("tracks hashing per phase and in total", () => {
    const acc = new Accounting({ now: fakeClock().now });
    // Hashing before start: the size is not known yet.
    acc.onEvent({ type: "phase", phase: "hash" });
    acc.onEvent({ type: "hashed", bytes: 10 });
    expect(acc.snapshot()).toMatchObject({ op: null, phase: "hash", phaseHashedBytes: 10, phaseProgress: null });

    acc.onEvent(startEvent({ bytesTotal: 100 }));
    acc.onEvent({ type: "phase", phase: "hash" });
    acc.onEvent({ type: "hashed", bytes: 40 });
    expect(acc.snapshot()).toMatchObject({ phase: "hash", phaseHashedBytes: 40, phaseProgress: 0.4, hashedBytes: 50 });

    acc.onEvent({ type: "phase", phase: "transfer" });
    expect(acc.snapshot()).toMatchObject({ phase: "transfer", phaseHashedBytes: 0, phaseProgress: null, hashedBytes: 50 });

    acc.onEvent({ type: "phase", phase: "verify" });
    acc.onEvent({ type: "hashed", bytes: 100 });
    expect(acc.snapshot()).toMatchObject({ phase: "verify", phaseProgress: 1, hashedBytes: 150 });
  });

  it("stops the clock at done and summarises", () => {
    const clock = fakeClock();
    const acc = new Accounting({ now: clock.now });
    clock.advance(800);
    acc.onEvent(startEvent({ bytesTotal: 100 * MiB, partsTotal: 2, bytesSkipped: 50 * MiB, partsSkipped: 1 }));
    acc.onEvent({ type: "part_start", partNumber: 2, size: 50 * MiB });
    clock.advance(1200);
    acc.onEvent({ type: "part_retry", partNumber: 2, attempt: 1, reason: "503", delayMs: 100 });
    acc.onEvent({ type: "part_done", partNumber: 2, size: 50 * MiB });
    acc.onEvent({ type: "phase", phase: "commit" });
    acc.onEvent({ type: "done", revision: 3, contentHash: "b3:abc", deduplicated: false });
    clock.advance(5000); // time after done does not count

    const s = acc.snapshot();
    expect(s).toMatchObject({ phase: "done", filesDone: 1, etaSeconds: 0, elapsedMs: 2000, partsInFlight: 0 });
    expect(acc.summary()).toEqual({
      op: "push",
      remote: "/backups/big.iso",
      local: "./big.iso",
      filesTotal: 1,
      filesDone: 1,
      filesSent: 1,
      filesSkipped: 0,
      filesDeleted: 0,
      filesFailed: 0,
      bytesTotal: 100 * MiB,
      bytesTransferred: 50 * MiB,
      bytesSkipped: 50 * MiB,
      bytesUnchanged: 0,
      bytesCopied: 0,
      bytesReused: 0,
      bytesCompressionSaved: 0,
      partsTotal: 2,
      partsTransferred: 1,
      partsSkipped: 1,
      retries: 1,
      hashedBytes: 0,
      durationMs: 2000,
      avgRateBytesPerSec: 25 * MiB,
    });
  });

  it("sums several transfers run one after another", () => {
    const acc = new Accounting({ now: fakeClock().now });
    for (const [name, size] of [
      ["a", 10],
      ["b", 20],
    ] as const) {
      acc.onEvent(startEvent({ local: name, remote: `/r/${name}`, bytesTotal: size, partsTotal: 1 }));
      // Part numbers restart with each file.
      acc.onEvent({ type: "part_start", partNumber: 1, size });
      acc.onEvent({ type: "part_done", partNumber: 1, size });
      acc.onEvent({ type: "done", revision: 1, contentHash: "x", deduplicated: false });
    }
    expect(acc.summary()).toMatchObject({
      local: "b",
      filesTotal: 2,
      filesDone: 2,
      bytesTotal: 30,
      bytesTransferred: 30,
      partsTotal: 2,
      partsTransferred: 2,
    });
  });

  it("counts wire bytes as transferred and plaintext as done, so a compressed push still reaches 100 %", () => {
    const acc = new Accounting({ now: fakeClock().now });
    acc.onEvent(startEvent({ bytesTotal: 100 * MiB, partsTotal: 3, bytesSkipped: 40 * MiB, partsSkipped: 1 }));
    acc.onEvent({ type: "part_start", partNumber: 2, size: 40 * MiB });
    acc.onEvent({ type: "progress", partNumber: 2, bytes: 3 * MiB });
    // In flight, a part counts what it moved so far.
    expect(acc.snapshot()).toMatchObject({ bytesTransferred: 3 * MiB, bytesDone: 43 * MiB });
    acc.onEvent({ type: "progress", partNumber: 2, bytes: 2 * MiB });
    acc.onEvent({ type: "part_done", partNumber: 2, size: 40 * MiB, wireBytes: 5 * MiB });
    acc.onEvent({ type: "part_start", partNumber: 3, size: 20 * MiB });
    acc.onEvent({ type: "part_done", partNumber: 3, size: 20 * MiB }); // raw: wire = size
    expect(acc.snapshot()).toMatchObject({ bytesTransferred: 25 * MiB, bytesDone: 100 * MiB, percentDone: 1 });
    acc.onEvent({ type: "done", revision: 2, contentHash: "x", deduplicated: false, bytesCopied: 40 * MiB });
    expect(acc.summary()).toMatchObject({
      bytesTotal: 100 * MiB,
      bytesTransferred: 25 * MiB,
      bytesSkipped: 40 * MiB,
      bytesCopied: 40 * MiB,
      bytesReused: 0,
      // Not said by "done": taken from the parts.
      bytesCompressionSaved: 35 * MiB,
    });
  });

  it("takes the delta counts a transfer's done gives, summed over files", () => {
    const acc = new Accounting({ now: fakeClock().now });
    acc.onEvent(startEvent({ bytesTotal: 10, partsTotal: 1 }));
    acc.onEvent({ type: "part_start", partNumber: 1, size: 10 });
    acc.onEvent({ type: "part_done", partNumber: 1, size: 10, wireBytes: 4 });
    acc.onEvent({ type: "done", revision: 1, contentHash: "x", deduplicated: false, bytesCompressionSaved: 6 });
    acc.onEvent(startEvent({ op: "pull", bytesTotal: 30, partsTotal: 1, bytesSkipped: 30, partsSkipped: 1 }));
    acc.onEvent({ type: "done", revision: 1, contentHash: "y", deduplicated: false, bytesReused: 30 });
    expect(acc.summary()).toMatchObject({ bytesTransferred: 4, bytesSkipped: 30, bytesReused: 30, bytesCompressionSaved: 6 });
    expect(acc.snapshot().percentDone).toBe(1);
  });

  it("calls an empty transfer complete", () => {
    const acc = new Accounting({ now: fakeClock().now });
    acc.onEvent(startEvent({ bytesTotal: 0, partsTotal: 0 }));
    expect(acc.snapshot()).toMatchObject({ percentDone: 1, etaSeconds: 0 });
  });
});

describe("RateWindow", () => {
  it("is zero before anything moved", () => {
    expect(new RateWindow().rate(123)).toBe(0);
  });

  it("forgets bytes older than the window", () => {
    const w = new RateWindow({ windowMs: 2000, bucketMs: 100 });
    w.add(1000, 0);
    expect(w.rate(1000)).toBeCloseTo(1000, 0);
    expect(w.rate(2500)).toBe(0);
  });

  it("does not spike on the first report", () => {
    const w = new RateWindow({ windowMs: 5000, bucketMs: 250 });
    w.begin(0);
    w.add(MiB, 1);
    // Read over at least one bucket (250 ms), not over 1 ms.
    expect(w.rate(1)).toBeCloseTo(4 * MiB, -3);
  });

  it("reuses its buckets across a long run", () => {
    const w = new RateWindow({ windowMs: 1000, bucketMs: 100 });
    for (let t = 0; t <= 60_000; t += 50) w.add(50, t);
    // Reports every 50 ms line up with the 100 ms buckets: exact.
    expect(w.rate(60_000)).toBeCloseTo(1000, 6);
  });

  it("rejects a window narrower than its bucket", () => {
    expect(() => new RateWindow({ windowMs: 10, bucketMs: 100 })).toThrow(RangeError);
  });
});
