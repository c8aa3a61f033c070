import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createFilter } from "../../cli/local/filter.js";
import type { DriveClient } from "../../cli/rpc/drive-client.js";
import { makeRunSync, MAX_ROUNDS, unknownPaths } from "../../cli/sync/sync-run.js";
import { VALUES } from "../../cli/sync/sync-values.js";
import type { RemoteNode, SyncHalt, SyncOptions } from "../../cli/sync/types.js";
import { file, harness } from "./sync-fakes.js";

const client = { server: "http://drive.test" } as DriveClient;
let dir: string;
let opts: SyncOptions;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "sync-run-"));
  opts = {
    local: dir,
    root: dir,
    remote: "/docs/",
    dryRun: false,
    force: false,
    maxDelete: { percent: 50, floor: 10 },
    filter: { exclude: [], include: [] },
    settleMs: 1000,
    stateDir: null,
    concurrency: 4,
    compress: "auto",
    signal: new AbortController().signal,
  };
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("runSync", () => {
  it("runs rounds until the plan is empty, then clears the halt and records the time", async () => {
    const h = harness();
    h.disk.set("a.txt", file("a", "aa"));
    h.server.set("b.txt", { ...file("b", "bb"), revision: 3 });
    await h.state.setValue(VALUES.halt, JSON.stringify({ reason: "max_delete", message: "old" }));
    const r = await makeRunSync(h.deps)(client, opts, h.emit);
    expect(r).toMatchObject({ rounds: 2, opsDone: 2, opsFailed: 0, conflicts: 0, pending: [] });
    expect(r.halted).toBeUndefined();
    expect([...h.state.synced.keys()].sort()).toEqual(["a.txt", "b.txt"]);
    expect(h.state.values.has(VALUES.halt)).toBe(false);
    expect(Date.parse(h.state.values.get(VALUES.lastSync)!)).toBeGreaterThan(Date.now() - 60_000);
    expect(JSON.parse(h.state.values.get(VALUES.pending)!)).toEqual([]);
    expect(h.state.closed).toBe(true);
  });

  it("opens the state under the server, the remote folder without slashes and the local realpath", async () => {
    const h = harness();
    let key;
    h.deps.openState = async (k, d) => ((key = [k, d]), h.state);
    await makeRunSync(h.deps)(client, opts, h.emit);
    expect(key).toEqual([{ server: "http://drive.test", remoteRoot: "docs", localRoot: dir }, null]);
  });

  it("a guard halt is saved and reported, and nothing is planned or done", async () => {
    const halt: SyncHalt = { reason: "marker_missing", message: `${dir} lost its marker` };
    const h = harness({ checkRoots: async () => halt });
    h.disk.set("a.txt", file("a", "aa"));
    const r = await makeRunSync(h.deps)(client, opts, h.emit);
    expect(r.halted).toEqual(halt);
    expect(h.plans).toHaveLength(0);
    expect(h.executions()).toBe(0);
    expect(JSON.parse(h.state.values.get(VALUES.halt)!)).toEqual(halt);
    expect(h.events).toContainEqual({ type: "sync_halt", reason: "marker_missing", message: halt.message });
  });

  it("a plan that deletes too much halts the run before anything is done", async () => {
    const halt: SyncHalt = { reason: "max_delete", message: "12 local deletes exceed --max-delete" };
    const h = harness();
    h.deps.planSync = () => ({ ops: [], notes: [], halted: halt });
    const r = await makeRunSync(h.deps)(client, opts, h.emit);
    expect(r.halted).toEqual(halt);
    expect(h.executions()).toBe(0);
    expect(JSON.parse(h.state.values.get(VALUES.halt)!)).toEqual(halt);
    expect(h.state.values.has(VALUES.lastSync)).toBe(false);
  });

  it("a dry run reports each planned operation, does none and writes no value", async () => {
    const h = harness();
    h.disk.set("a.txt", file("a", "aa"));
    h.server.set("b.txt", { ...file("b", "bb"), revision: 3 });
    const r = await makeRunSync(h.deps)(client, { ...opts, dryRun: true }, h.emit);
    expect(r).toMatchObject({ rounds: 1, opsDone: 0, pending: ["a.txt", "b.txt"] });
    expect(h.executions()).toBe(0);
    expect(h.events.filter((e) => e.type === "sync_op")).toEqual([
      { type: "sync_op", op: "upload", path: "a.txt", why: "local_new", outcome: "planned" },
      { type: "sync_op", op: "download", path: "b.txt", why: "remote_new", outcome: "planned" },
    ]);
    expect(h.state.values.size).toBe(0);
  });

  it("--force holds for every round of its run, and --max-delete counts the run's deletes, not a round's", async () => {
    const h = harness();
    h.disk.set("a.txt", file("a", "aa"));
    await makeRunSync(h.deps)(client, { ...opts, force: true }, h.emit);
    expect(h.plans.map((p) => p.force)).toEqual([true, true]);
    expect(h.plans[0]?.maxDelete).toEqual({ percent: 50, floor: 10 });
    expect(h.plans[1]?.maxDelete).toEqual({ count: 10 });
  });

  it("stops after two rounds in which nothing got done, and leaves the rest pending", async () => {
    const h = harness();
    h.disk.set("a.txt", file("a", "aa"));
    h.deps.executePlan = async (_c, _s, ops) => ops.map((op) => ({ op, outcome: "skipped" as const, message: "a.txt changed since the scan" }));
    const r = await makeRunSync(h.deps)(client, opts, h.emit);
    expect(r).toMatchObject({ rounds: 2, opsDone: 0, opsFailed: 0, pending: ["a.txt"] });
    expect(JSON.parse(h.state.values.get(VALUES.pending)!)).toEqual([{ op: "upload", path: "a.txt", why: "local_new", message: "a.txt changed since the scan" }]);
    expect(h.state.values.has(VALUES.lastSync)).toBe(false);
    expect(h.events.some((e) => e.type === "warning" && /could not be done/.test(e.message))).toBe(true);
  });

  it("counts an operation that keeps failing once, with the first failure's code", async () => {
    const h = harness();
    h.disk.set("a.txt", file("a", "aa"));
    h.disk.set("b.txt", file("b", "bb"));
    const real = h.deps.executePlan;
    h.deps.executePlan = async (c, s, ops, o, e) => {
      const bad = ops.filter((op) => op.type === "upload" && op.path === "b.txt");
      const out = await real(c, s, ops.filter((op) => !bad.includes(op)), o, e);
      return [...out, ...bad.map((op) => ({ op, outcome: "failed" as const, message: "quota", code: "limit" }))];
    };
    const r = await makeRunSync(h.deps)(client, opts, h.emit);
    expect(r).toMatchObject({ opsDone: 1, opsFailed: 1, firstFailure: "limit", pending: ["b.txt"] });
    expect(r.rounds).toBe(3);
  });

  it("gives up after MAX_ROUNDS when every round finds more work", async () => {
    const h = harness();
    let n = 0;
    h.deps.planSync = () => ({ ops: [{ type: "forget", path: `gone${n++}`, why: "same_change" }], notes: [] });
    const r = await makeRunSync(h.deps)(client, opts, h.emit);
    expect(r.rounds).toBe(MAX_ROUNDS);
    expect(r.opsDone).toBe(MAX_ROUNDS);
  });

  it("saves the conflicted copies it made, for status", async () => {
    const h = harness();
    h.disk.set("a.txt", file("a", "mine"));
    let first = true;
    const plan = h.deps.planSync;
    h.deps.planSync = (input) => {
      if (!first) return plan(input);
      first = false;
      return { ops: [{ type: "conflict_copy", path: "a.txt", to: "a (conflicted copy).txt", local: input.local.get("a.txt")!, why: "conflict" }], notes: [{ path: "a.txt", why: "conflict", message: "a.txt changed on both sides: kept yours as a (conflicted copy).txt" }] };
    };
    const r = await makeRunSync(h.deps)(client, opts, h.emit);
    expect(r.conflicts).toBe(1);
    const saved = JSON.parse(h.state.values.get(VALUES.conflicts)!) as Array<{ path: string; to: string; time: string }>;
    expect(saved).toEqual([{ path: "a.txt", to: "a (conflicted copy).txt", time: expect.any(String) }]);
    expect(h.events).toContainEqual({ type: "warning", path: "a.txt", message: "a.txt changed on both sides: kept yours as a (conflicted copy).txt" });
  });

  it("files still being written are pending after a few waits for them, and the run is otherwise clean", async () => {
    const h = harness();
    h.disk.set("log.txt", { ...file("l", "ll"), unstable: true });
    const r = await makeRunSync(h.deps)(client, { ...opts, settleMs: 10 }, h.emit);
    expect(r).toMatchObject({ rounds: 4, pending: ["log.txt"] });
    expect(h.state.values.has(VALUES.lastSync)).toBe(true);
  });

  it("a file that settles while the run waits is synced by it", async () => {
    const h = harness();
    h.disk.set("log.txt", { ...file("l", "ll"), unstable: true });
    const scan = h.deps.scanLocal;
    h.deps.scanLocal = async (o) => {
      const s = await scan(o);
      h.disk.set("log.txt", file("l", "ll")); // settled by the next scan
      return s;
    };
    const r = await makeRunSync(h.deps)(client, { ...opts, settleMs: 10 }, h.emit);
    expect(r).toMatchObject({ opsDone: 1, pending: [] });
    expect(h.server.has("log.txt")).toBe(true);
  });

  it("an abort stops before the next round and still closes the state", async () => {
    const h = harness();
    const ac = new AbortController();
    h.disk.set("a.txt", file("a", "aa"));
    const real = h.deps.executePlan;
    h.deps.executePlan = async (...args) => {
      const out = await real(...args);
      ac.abort(new Error("interrupted"));
      return out;
    };
    await expect(makeRunSync(h.deps)(client, { ...opts, signal: ac.signal }, h.emit)).rejects.toThrow("interrupted");
    expect(h.state.synced.has("a.txt")).toBe(true);
    expect(h.state.closed).toBe(true);
  });

  it("makes the root on a first sync, and refuses a root that is a file", async () => {
    const h = harness();
    const fresh = join(dir, "new");
    await makeRunSync(h.deps)(client, { ...opts, local: fresh }, h.emit);
    const { stat, writeFile } = await import("node:fs/promises");
    expect((await stat(fresh)).isDirectory()).toBe(true);
    await writeFile(join(dir, "f"), "x");
    await expect(makeRunSync(harness().deps)(client, { ...opts, local: join(dir, "f") }, h.emit)).rejects.toThrow(/is not a folder/);
  });
});

describe("unknownPaths", () => {
  it("covers what the scan could not read and all under it, what the filter leaves out, and markers (a nested sync root's too)", () => {
    const filter = createFilter({ exclude: ["*.tmp", "build/"], include: [], ignoreFile: "secret" });
    const remote = new Map<string, RemoteNode>([["build", { ...file("b", ""), kind: "folder", revision: 0 }]]);
    const unknown = unknownPaths({ unknown: new Set(["locked"]) }, filter, [remote]);
    expect(["locked", "locked/x", "a.tmp", "d/a.tmp", "build", "build/out.o", "secret", ".drive-sync", "d/.drive-sync"].filter((p) => !unknown(p))).toEqual([]);
    expect(["a.txt", "lockedx", "builder", ""].filter(unknown)).toEqual([]);
  });
});
