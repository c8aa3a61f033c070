import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { OrderedWindow } from "../../cli/transfer/pull/ordered-window.js";
import { planTasks } from "../../cli/transfer/pull/plan-tasks.js";
import { runParallel } from "../../cli/transfer/run-parallel.js";
import { Codec } from "../../gen/drive/v1/types_pb.js";
import type { RemoteChunk } from "../../cli/transfer/pull/download-list.js";

const never = new AbortController().signal;
const tick = () => new Promise((r) => setImmediate(r));

function chunksOf(sizes: number[]): RemoteChunk[] {
  let at = 0;
  return sizes.map((size, index) => {
    const c = { index, offset: at, size, hash: Buffer.alloc(32, index % 251), storedOffset: at, storedSize: size, codec: Codec.NONE as const };
    at += size;
    return c;
  });
}

describe("OrderedWindow", () => {
  it("hands chunks to the sink in file order, whatever order they verify in, and each once", async () => {
    const taken: number[] = [];
    const w = new OrderedWindow([0, 10, 20, 30, 40], 100, (i) => void taken.push(i));
    for (const i of [2, 0, 3, 0, 1, 2]) w.deliver(i, { bytes: Buffer.alloc(10) });
    await w.done();
    expect(taken).toEqual([0, 1, 2, 3]);
  });

  it("lets a task start only within the window of the frontier, or when it holds the frontier", async () => {
    const w = new OrderedWindow([0, 10, 20, 30, 40, 50], 20, () => undefined);
    let started = false;
    const later = w.room(3, 40, never).then(() => (started = true));
    await tick();
    expect(started).toBe(false); // ends at 40, the frontier is at 0: 40 bytes ahead
    w.deliver(0, { bytes: Buffer.alloc(10) });
    await tick();
    expect(started).toBe(false);
    w.deliver(1, { bytes: Buffer.alloc(10) });
    await later; // frontier at 20: within 20 bytes
    // A task bigger than the window still runs once it holds the frontier: no stall.
    await w.room(2, 50, never);
  });

  it("passes the sink's failure to everyone waiting and to every later delivery", async () => {
    const w = new OrderedWindow([0, 1, 2, 3], 1, () => Promise.reject(new Error("EPIPE")));
    const waiting = w.room(2, 3, never);
    w.deliver(0, { bytes: Buffer.alloc(1) });
    await expect(w.done()).rejects.toThrow("EPIPE");
    await expect(waiting).rejects.toThrow("EPIPE");
    expect(() => w.deliver(1, { bytes: Buffer.alloc(1) })).toThrow("EPIPE");
  });

  it("waits for the sink: a slow one holds deliveries back through the window", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const w = new OrderedWindow([0, 10, 20, 30], 10, (i) => (i === 0 ? gate : undefined));
    w.deliver(0, { bytes: Buffer.alloc(10) });
    let started = false;
    const p = w.room(2, 30, never).then(() => (started = true));
    await tick();
    expect(started).toBe(false);
    release();
    w.deliver(1, { bytes: Buffer.alloc(10) });
    await p;
  });

  it("never holds more than the window plus one task, and finishes, for any sizes, window and completion order", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 10, max: 120 }),
        fc.array(fc.nat({ max: 5 }), { minLength: 1, maxLength: 40 }),
        async (sizes, windowBytes, concurrency, cap, delays) => {
          const chunks = chunksOf(sizes);
          const tasks = planTasks(chunks, new Map(), { getCap: cap, plainCap: cap, bufferLimit: 1000, copyWithin: false });
          const offsets = [...chunks.map((c) => c.offset), chunks.at(-1)!.offset + chunks.at(-1)!.size];
          const taken: number[] = [];
          let held = 0;
          let peak = 0;
          const biggest = Math.max(...tasks.map((t) => t.plainEnd - t.plainStart));
          const w = new OrderedWindow(offsets, windowBytes, (i) => {
            taken.push(i);
            held -= chunks[i]!.size;
          });
          let n = 0;
          await runParallel(tasks, concurrency, async (t) => {
            if (t.kind !== "fetch") throw new Error("only fetches planned");
            await w.room(t.first, t.plainEnd, never);
            for (let d = delays[n++ % delays.length]!; d > 0; d--) await tick();
            // Out of order within a task too: last chunk first.
            for (let i = t.end - 1; i >= t.first; i--) {
              held += chunks[i]!.size;
              peak = Math.max(peak, held);
              w.deliver(i, { bytes: Buffer.alloc(0) });
            }
          });
          await w.done();
          expect(taken).toEqual(chunks.map((c) => c.index));
          expect(peak).toBeLessThanOrEqual(windowBytes + biggest);
        },
      ),
      { numRuns: 150 },
    );
  });
});
