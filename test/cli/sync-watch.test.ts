import { Code, ConnectError } from "@connectrpc/connect";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { FeedStep, FollowOptions } from "../../cli/feed/types.js";
import type { DriveClient } from "../../cli/rpc/drive-client.js";
import { watchSync, type SyncWatchOptions } from "../../cli/sync/sync-watch.js";
import type { LocalWatchOptions } from "../../cli/watch/local-watcher.js";
import { file, harness } from "./sync-fakes.js";

const client = { server: "http://drive.test" } as DriveClient;
let dir: string;
let ac: AbortController;
let opts: SyncWatchOptions;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "sync-watch-"));
  ac = new AbortController();
  opts = {
    local: dir,
    root: dir,
    remote: "docs",
    dryRun: false,
    force: true,
    maxDelete: { percent: 50, floor: 10 },
    filter: { exclude: [], include: [] },
    settleMs: 50,
    stateDir: null,
    concurrency: 4,
    compress: "auto",
    signal: ac.signal,
    rescanMs: 0,
  };
});
afterEach(async () => {
  ac.abort();
  await rm(dir, { recursive: true, force: true });
});

const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 5));
  }
};

/** A feed the test drives: each push() yields one step to the follower now open; onFollow sees each follow's options. */
function fakeFeed(h: ReturnType<typeof harness>, onFollow?: (o: FollowOptions) => void): { push?: (s: FeedStep) => void } {
  const feed: { push?: (s: FeedStep) => void } = {};
  h.deps.followChanges = async function* (_c, o) {
    onFollow?.(o);
    while (!o.signal.aborted) {
      const step = await new Promise<FeedStep | null>((resolve) => {
        feed.push = resolve;
        o.signal.addEventListener("abort", () => resolve(null), { once: true });
      });
      if (!step) return;
      yield step;
    }
  };
  return feed;
}

describe("drive sync --watch", () => {
  it("syncs at once, then on a local hint; force holds for the first run only; ends on abort with the totals", async () => {
    const h = harness();
    let watcher: LocalWatchOptions | undefined;
    h.deps.watchLocal = async (o) => ((watcher = o), { mode: "events", folders: 0, close: async () => {} });
    h.disk.set("a.txt", file("a", "aa"));
    const run = watchSync(h.deps, client, opts, h.emit);
    await until(() => h.state.synced.has("a.txt") && h.plans.length === 2);
    h.disk.set("b.txt", file("b", "bb"));
    watcher!.onHints(["b.txt"]);
    await until(() => h.server.has("b.txt"));
    await until(() => h.plans.length === 4);
    ac.abort();
    const r = await run;
    expect(r).toMatchObject({ opsDone: 2, opsFailed: 0 });
    expect(h.plans.map((p) => p.force)).toEqual([true, true, false, false]); // the first run: both its rounds
    expect(h.state.closed).toBe(true);
  });

  it("a change in the feed wakes a run; the follower starts from the state's cursor, under the remote folder", async () => {
    const h = harness();
    const follows: Array<{ cursor: string; prefix?: string }> = [];
    const feed = fakeFeed(h, (o) => follows.push({ cursor: o.cursor, prefix: o.prefix }));
    const run = watchSync(h.deps, client, opts, h.emit);
    await until(() => follows.length === 1 && feed.push !== undefined);
    expect(follows[0]).toEqual({ cursor: "c0", prefix: "docs" });
    h.server.set("r.txt", { ...file("r", "rr"), revision: 1 });
    feed.push!({ changes: [{} as never], cursor: "c1", caughtUp: true });
    await until(() => h.disk.has("r.txt"));
    await until(() => follows.length === 2);
    expect(follows[1]?.cursor).toBe("c1");
    ac.abort();
    await run;
  });

  it("a change only the server made reuses the last scan; a local hint walks the tree again", async () => {
    const h = harness();
    let watcher: LocalWatchOptions | undefined;
    h.deps.watchLocal = async (o) => ((watcher = o), { mode: "events", folders: 0, close: async () => {} });
    let scans = 0;
    const scan = h.deps.scanLocal;
    h.deps.scanLocal = (o) => (scans++, scan(o));
    const feed = fakeFeed(h);
    h.disk.set("a.txt", file("a", "aa"));
    const run = watchSync(h.deps, client, opts, h.emit);
    await until(() => h.plans.length === 2 && feed.push !== undefined);
    expect(scans).toBe(2); // the upload's round, then the round that found nothing
    feed.push!({ changes: [{} as never], cursor: "c1", caughtUp: true });
    h.server.set("r.txt", { ...file("r", "rr"), revision: 1 });
    await until(() => h.disk.has("r.txt") && h.plans.length === 4);
    expect(scans).toBe(3); // the download's round planned from the last scan; the round after it walked the disk it changed
    h.disk.set("l.txt", file("l", "ll"));
    watcher!.onHints(["l.txt"]);
    await until(() => h.server.has("l.txt") && h.plans.length === 6);
    expect(scans).toBe(5);
    ac.abort();
    await run;
  });

  it("a server that is away is retried with backoff and said once; then it says it is back", async () => {
    const h = harness();
    let downFor = 3;
    const refresh = h.deps.refreshRemote;
    h.deps.refreshRemote = async (...args) => {
      if (downFor-- > 0) throw new ConnectError("connection refused", Code.Unavailable);
      return refresh(...args);
    };
    h.disk.set("a.txt", file("a", "aa"));
    const run = watchSync(h.deps, client, opts, h.emit);
    await until(() => h.server.has("a.txt"), 10_000);
    ac.abort();
    await run;
    const warnings = h.events.filter((e) => e.type === "warning").map((e) => (e as { message: string }).message);
    expect(warnings.filter((m) => /connection refused/.test(m))).toHaveLength(1);
    expect(warnings).toContain("the server answers again: syncing");
  });

  it("an error not worth riding out ends the watch", async () => {
    const h = harness();
    h.deps.refreshRemote = async () => {
      throw new ConnectError("bad token", Code.Unauthenticated);
    };
    await expect(watchSync(h.deps, client, opts, h.emit)).rejects.toThrow(/bad token/);
    expect(h.state.closed).toBe(true);
  });

  it("a halt is said once, however many runs it stops", async () => {
    const h = harness({ checkRoots: async () => ({ reason: "root_missing", message: `${dir} is gone` }) });
    let watcher: LocalWatchOptions | undefined;
    h.deps.watchLocal = async (o) => ((watcher = o), { mode: "events", folders: 0, close: async () => {} });
    let guarded = 0;
    const check = h.deps.checkRoots;
    h.deps.checkRoots = async (...a) => (guarded++, check(...a));
    const run = watchSync(h.deps, client, opts, h.emit);
    await until(() => guarded === 1);
    watcher!.onRescan("periodic");
    await until(() => guarded === 2);
    ac.abort();
    const r = await run;
    expect(h.events.filter((e) => e.type === "sync_halt")).toHaveLength(1);
    expect(r.halted?.reason).toBe("root_missing");
  });

  it("a file still being written is synced once it settles", async () => {
    const h = harness();
    h.disk.set("log.txt", { ...file("l", "ll"), unstable: true });
    const run = watchSync(h.deps, client, opts, h.emit);
    await until(() => h.plans.length === 1);
    h.disk.set("log.txt", file("l", "ll2"));
    await until(() => h.server.has("log.txt"), 2000);
    ac.abort();
    await run;
  });
});
