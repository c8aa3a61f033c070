import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BackgroundFlush } from "../../shared/io/background-flush.js";

describe("BackgroundFlush", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "drive-flush-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("flushes once per threshold, one at a time, and flushes everything at settle", async () => {
    const fh = await open(join(dir, "f"), "w+");
    const calls: string[] = [];
    let release!: () => void;
    const spy = Object.assign(Object.create(fh) as typeof fh, {
      datasync: () => (calls.push("datasync"), calls.length === 1 ? new Promise<void>((r) => (release = r)) : Promise.resolve()),
    });
    const flush = new BackgroundFlush(spy, 100);
    flush.wrote(60);
    expect(calls).toEqual([]);
    flush.wrote(60);
    expect(calls).toEqual(["datasync"]);
    // While one is in flight, more writes start no second one.
    flush.wrote(500);
    expect(calls).toEqual(["datasync"]);
    const settled = flush.settle();
    release();
    await settled;
    expect(calls).toEqual(["datasync", "datasync"]);
    await fh.close();
  });

  it("keeps a failed writeback and throws it at settle, without flushing again", async () => {
    const fh = await open(join(dir, "g"), "w+");
    const eio = Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" });
    let calls = 0;
    const spy = Object.assign(Object.create(fh) as typeof fh, {
      datasync: () => (calls++, Promise.reject(eio)),
    });
    const flush = new BackgroundFlush(spy, 10);
    flush.wrote(10);
    await expect(flush.settle()).rejects.toBe(eio);
    expect(calls).toBe(1);
    await fh.close();
  });
});
