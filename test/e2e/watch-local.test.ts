import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import watcher from "@parcel/watcher";
import { afterEach, describe, expect, it } from "vitest";
import type { PathFilter } from "../../cli/local/types.js";
import type { RunEvent } from "../../cli/transfer/events.js";
import { watchLocal, type LocalWatcher, type RescanReason } from "../../cli/watch/local-watcher.js";
import { SettleQueue } from "../../cli/watch/settle-queue.js";

/** A small real filter: *.tmp files and the folder "skip" are left out. */
const filter: PathFilter = { excludes: (p, dir) => p.endsWith(".tmp") || (dir && p === "skip") };

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Ten folders five deep, five files each, made as fast as the disk allows. */
function makeDeepTrees(root: string): string[] {
  const files: string[] = [];
  for (let i = 0; i < 10; i++) {
    const d = `d${i}/b/c/d/e`;
    mkdirSync(join(root, d), { recursive: true });
    for (let j = 0; j < 5; j++) {
      writeFileSync(join(root, d, `f${j}`), "x");
      files.push(`${d}/f${j}`);
    }
  }
  return files;
}

describe("local watcher", () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });
  async function root(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "drive-watch-"));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }
  async function watch(dir: string, extra: { rescanMs?: number; maxWatches?: number } = {}) {
    const hints = new Set<string>();
    const rescans: RescanReason[] = [];
    const events: RunEvent[] = [];
    const ac = new AbortController();
    const w: LocalWatcher = await watchLocal({
      root: dir,
      filter: () => filter,
      rescanMs: extra.rescanMs ?? 0,
      signal: ac.signal,
      onHints: (p) => p.forEach((x) => hints.add(x)),
      onRescan: (r) => rescans.push(r),
      emit: (e) => events.push(e),
      ...("maxWatches" in extra ? { maxWatches: extra.maxWatches } : {}),
    });
    cleanup.push(async () => {
      ac.abort();
      await w.close();
    });
    return { w, hints, rescans, events };
  }

  it("reproduces @parcel/watcher #97: files made inside a fresh mkdir -p tree go unseen", async () => {
    // Several rounds: the miss is a race between mkdir and the watcher adding its watch.
    let missed = 0;
    for (let round = 0; round < 5 && missed === 0; round++) {
      const dir = await root();
      const seen = new Set<string>();
      const sub = await watcher.subscribe(dir, (_err, evs) => evs.forEach((e) => seen.add(e.path.slice(dir.length + 1))));
      const files = makeDeepTrees(dir);
      await writeFile(join(dir, "marker"), "m");
      await until(() => seen.has("marker"), "the marker event");
      await new Promise((r) => setTimeout(r, 200)); // the watcher's own batching: let late events in
      await sub.unsubscribe();
      missed += files.filter((f) => !seen.has(f)).length;
    }
    expect(missed).toBeGreaterThan(0);
  });

  it("names every file of a fresh mkdir -p tree, by scanning each new folder", async () => {
    const dir = await root();
    const { hints, w } = await watch(dir);
    expect(w.mode).toBe("events");
    const files = makeDeepTrees(dir);
    await until(() => files.every((f) => hints.has(f)), "every file in the new trees");
    expect(hints.has("d3/b/c")).toBe(true);
  });

  it("applies the filter to events: left-out files and everything under a left-out folder are never named", async () => {
    const dir = await root();
    const { hints } = await watch(dir);
    mkdirSync(join(dir, "skip/inner"), { recursive: true });
    writeFileSync(join(dir, "skip/inner/f"), "x");
    writeFileSync(join(dir, "a.tmp"), "x");
    writeFileSync(join(dir, "kept"), "x");
    await until(() => hints.has("kept"), "the kept file");
    await new Promise((r) => setTimeout(r, 400)); // past the second look at new folders
    expect([...hints].filter((h) => h.startsWith("skip") || h.endsWith(".tmp"))).toEqual([]);
  });

  it("rescans periodically, with jitter", async () => {
    const dir = await root();
    const { rescans } = await watch(dir, { rescanMs: 50 });
    await until(() => rescans.length >= 3, "three rescans");
    expect(rescans.every((r) => r === "periodic")).toBe(true);
  });

  it("warns near the inotify budget, with the numbers and the sysctl to raise", async () => {
    const dir = await root();
    for (let i = 0; i < 9; i++) mkdirSync(join(dir, `f${i}`));
    const { events, w } = await watch(dir, { maxWatches: 12 }); // 10 folders with the root: 83 %
    expect(w.mode).toBe("events");
    const warning = events.find((e) => e.type === "warning");
    expect(warning).toMatchObject({ message: expect.stringMatching(/10 folders.*83%.*limit of 12.*sysctl fs\.inotify\.max_user_watches=/) });
  });

  it("falls back to polling rescans over the inotify budget", async () => {
    const dir = await root();
    for (let i = 0; i < 9; i++) mkdirSync(join(dir, `f${i}`));
    const { events, rescans, w } = await watch(dir, { maxWatches: 5, rescanMs: 50 });
    expect(w.mode).toBe("polling");
    expect(events.find((e) => e.type === "warning")).toMatchObject({ message: expect.stringMatching(/10 folders to watch, over the inotify limit of 5.*periodic rescans/) });
    await until(() => rescans.length >= 1, "a polling rescan");
    expect(rescans[0]).toBe("polling");
  });
});

describe("settle queue", () => {
  it("holds a file until it has not been touched for settleMs, and lets a deleted path go at once", async () => {
    const dir = await mkdtemp(join(tmpdir(), "drive-settle-"));
    try {
      const q = new SettleQueue(dir, 300);
      await writeFile(join(dir, "f"), "part one");
      q.add(["f", "gone"]);
      const first = await q.take();
      expect(first.ready).toEqual(["gone"]);
      expect(first.nextMs).toBeGreaterThan(0);
      expect(first.nextMs).toBeLessThanOrEqual(300);
      await new Promise((r) => setTimeout(r, 150));
      await writeFile(join(dir, "f"), "part one, part two"); // touched again: the wait starts over
      const second = await q.take();
      expect(second.ready).toEqual([]);
      expect(second.nextMs).toBeGreaterThan(150);
      await new Promise((r) => setTimeout(r, second.nextMs! + 5));
      expect((await q.take()).ready).toEqual(["f"]);
      expect(q.size).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
