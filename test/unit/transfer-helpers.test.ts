import { describe, expect, it } from "vitest";
import { Codec } from "../../gen/drive/v1/types_pb.js";
import { MAX_REPORTS_PER_CALL, MAX_STORED_SIZES_PER_CALL, PartReporter } from "../../cli/transfer/part-reporter.js";
import { runParallel } from "../../cli/transfer/run-parallel.js";
import { UrlBook } from "../../cli/transfer/url-book.js";

const url = (partNumber: number) => ({ partNumber, url: `http://x/${partNumber}`, headers: {} }) as never;

describe("UrlBook", () => {
  it("fetches URLs in batches ahead of need and refreshes expired ones", async () => {
    let now = 0;
    const calls: number[][] = [];
    const book = new UrlBook(
      async (parts) => {
        calls.push(parts);
        return { urls: parts.map(url), expiresInSeconds: 300 };
      },
      () => [1, 2, 3, 4, 5],
      3,
      () => now,
    );
    expect((await book.get(1)).url).toBe("http://x/1");
    await book.get(2);
    await book.get(3);
    expect(calls).toEqual([[1, 2, 3]]); // one call served three parts

    now += 300_000; // past expiry
    await book.get(2);
    expect(calls[1]![0]).toBe(2);

    book.invalidate(4);
    await book.get(4);
    expect(calls.length).toBe(3);
  });
});

describe("PartReporter", () => {
  it("reports in batches and keeps a failed batch for the next flush", async () => {
    const sent: number[][] = [];
    let fail = true;
    const reporter = new PartReporter(async (parts) => {
      if (fail) throw new Error("server busy");
      sent.push(parts.map((p) => p.partNumber));
    }, 2, 60_000);
    reporter.add(1, "a");
    reporter.add(2, "b"); // batch full: a background flush, which fails
    // The flush a caller awaits says so: the last one, before CompleteUpload, must not lose a report quietly.
    await expect(reporter.flush()).rejects.toThrow("server busy");
    fail = false;
    reporter.add(3, "c");
    await reporter.flush();
    expect(sent.flat().sort()).toEqual([1, 2, 3]);
    reporter.close();
  });

  it("puts a failed batch back before a later flush takes what is pending", async () => {
    const sent: number[][] = [];
    let calls = 0;
    let release: (() => void) | undefined;
    const reporter = new PartReporter(async (parts) => {
      if (++calls === 1) {
        await new Promise<void>((r) => (release = r));
        throw new Error("connection reset");
      }
      sent.push(parts.map((p) => p.partNumber));
    }, 2, 60_000);
    reporter.add(1, "a");
    reporter.add(2, "b"); // background flush of [1, 2], still in flight
    reporter.add(3, "c");
    const last = reporter.flush(); // called while [1, 2] is in flight, and after it fails
    while (!release) await new Promise((r) => setImmediate(r));
    release();
    await last;
    expect(sent).toEqual([[1, 2, 3]]);
    reporter.close();
  });
});

describe("PartReporter backlog", () => {
  it("sends a backlog left by failed reports in calls the server accepts", async () => {
    const sizes: number[] = [];
    let fail = true;
    const reporter = new PartReporter(async (parts) => {
      if (fail) throw new Error("server busy");
      sizes.push(parts.length);
    }, 100_000, 60_000);
    for (let n = 1; n <= 2500; n++) reporter.add(n, "e");
    await expect(reporter.flush()).rejects.toThrow("server busy");
    fail = false;
    await reporter.flush();
    expect(sizes).toEqual([MAX_REPORTS_PER_CALL, MAX_REPORTS_PER_CALL, 500]);
    reporter.close();
  });
});

describe("PartReporter stored sizes", () => {
  it("keeps each call under the server's cap on stored sizes, and raw parts carry none", async () => {
    const calls: Array<{ parts: number; sizes: number }> = [];
    const reporter = new PartReporter(async (parts) => {
      calls.push({ parts: parts.length, sizes: parts.reduce((s, p) => s + p.storedSizes.length, 0) });
    }, 100_000, 60_000);
    // Five compressed parts of 20,000 chunks each (a 5 GiB part of 256 KiB chunks), then raw ones.
    for (let n = 1; n <= 5; n++) reporter.add(n, "e", Codec.ZSTD, Array(20_000).fill(7));
    reporter.add(6, "f");
    await reporter.flush();
    expect(calls.every((c) => c.sizes <= MAX_STORED_SIZES_PER_CALL)).toBe(true);
    expect(calls.map((c) => c.parts)).toEqual([3, 3]);
    expect(calls.reduce((s, c) => s + c.sizes, 0)).toBe(100_000);
    reporter.close();
  });

  it("reports the codec and each frame's size", async () => {
    const sent: unknown[] = [];
    const reporter = new PartReporter(async (parts) => void sent.push(...parts), 100, 60_000);
    reporter.add(1, "a", Codec.ZSTD, [10, 20]);
    reporter.add(2, "b", Codec.NONE, [5]);
    await reporter.flush();
    expect(sent).toEqual([
      { partNumber: 1, etag: "a", codec: Codec.ZSTD, storedSizes: [10n, 20n] },
      { partNumber: 2, etag: "b", codec: Codec.NONE, storedSizes: [] },
    ]);
    reporter.close();
  });
});

describe("runParallel", () => {
  it("bounds concurrency", async () => {
    let inFlight = 0;
    let peak = 0;
    await runParallel([...Array(20).keys()], 3, async () => {
      peak = Math.max(peak, ++inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
    });
    expect(peak).toBe(3);
  });

  it("aborts siblings on the first failure and starts nothing new", async () => {
    const started: number[] = [];
    let siblingAborted = false;
    const run = runParallel([1, 2, 3, 4, 5, 6], 2, async (n, signal) => {
      started.push(n);
      if (n === 1) throw new Error("part 1 failed");
      await new Promise<void>((resolve) => signal.addEventListener("abort", () => ((siblingAborted = true), resolve())));
    });
    await expect(run).rejects.toThrow("part 1 failed");
    expect(siblingAborted).toBe(true);
    expect(started.length).toBeLessThanOrEqual(3);
  });
});
