import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blake3Hex, conflictSibling, ContentLedger, diff, Rng, snapshot, startWorld, type SyncWorld } from "./harness.js";

/**
 * The pieces of the sync harness that need no `drive sync`, checked with
 * push and pull: trees on disk and on the server agree, contents ever held
 * are found, the kill switch kills, faults fire, the PRNG replays.
 */
describe("sync harness", () => {
  let w: SyncWorld;
  beforeAll(async () => {
    w = await startWorld({ proxy: true });
  });
  afterAll(async () => {
    await w?.stop();
  });

  it("snapshots a local tree and the server's alike, and finds every content the server held", async () => {
    const a = await w.client("a", "h1");
    const b = await w.client("b", "h1");
    await mkdir(join(a.root, "docs/deep"), { recursive: true });
    await mkdir(join(a.root, "empty"));
    await writeFile(join(a.root, "one.txt"), "one");
    await writeFile(join(a.root, "docs/deep/two.txt"), "two");
    await chmod(join(a.root, "one.txt"), 0o755);
    const push = await w.run(a, ["push", a.root, "h1"]);
    expect(push.code, push.stderr).toBe(0);
    await writeFile(join(a.root, ".drive-sync"), "{}"); // the marker is never part of a tree
    const local = await snapshot(a.root);
    expect([...local.keys()]).toEqual(["docs", "docs/deep", "docs/deep/two.txt", "empty", "one.txt"]);
    expect(local.get("one.txt")).toEqual({ kind: "file", hash: blake3Hex("one"), mode: 0o755 });
    expect(diff(local, await w.serverTree("h1"), { modes: true })).toEqual([]);

    const pull = await w.run(b, ["pull", "h1", b.root]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(diff(await snapshot(b.root), local, { modes: true })).toEqual([]);

    // An overwrite and a delete: both old contents are still held, as versions.
    await writeFile(join(a.root, "one.txt"), "one, edited");
    expect((await w.run(a, ["push", join(a.root, "one.txt"), "h1/one.txt"])).code).toBe(0);
    expect((await w.drive(["rm", "h1/docs/deep/two.txt"])).code).toBe(0);
    const ever = await w.serverContentsEver("h1");
    expect([...ever].sort()).toEqual([blake3Hex("one"), blake3Hex("one, edited"), blake3Hex("two")].sort());
    expect(await w.serverDeleted("h1")).toEqual(["docs/deep/two.txt"]);

    const ledger = new ContentLedger();
    ledger.note(local, "a");
    ledger.note(await snapshot(a.root), "a");
    expect(ledger.missing(ever)).toEqual([]);
    expect(ledger.missing(new Set([blake3Hex("one")]))).toHaveLength(2);
  });

  it("kills a run after a time, and a fault on a PUT fires through the proxy", async () => {
    const c = await w.client("c", "h2");
    for (let i = 0; i < 200; i++) await writeFile(join(c.root, `f${i}.txt`), `file ${i}`);
    const killed = await w.run(c, ["push", c.root, "h2"], { kill: { ms: 1 } });
    expect(killed.killed).toBe(true);
    expect(killed.signal).toBe("SIGKILL");

    const rule = w.proxy!.faults.add({ method: "PUT", nth: 1, fault: { kind: "respond", status: 503, body: "<Error><Code>SlowDown</Code></Error>" } });
    const again = await w.run(c, ["push", c.root, "h2"]);
    w.proxy!.faults.clear();
    expect(again.code, again.stderr).toBe(0);
    expect(rule.fired).toBe(1);
    expect(diff(await snapshot(c.root), await w.serverTree("h2"))).toEqual([]);
  });

  it("makes a remote folder", async () => {
    await w.mkdirRemote("h3");
    expect([...(await w.serverTree(""))].filter(([p]) => p === "h3")).toEqual([["h3", { kind: "folder", hash: "", mode: 0 }]]);
  });

  it("replays a seed, and names conflicted copies' siblings", () => {
    const xs = (seed: number) => {
      const r = new Rng(seed);
      return Array.from({ length: 5 }, () => r.int(0, 1000));
    };
    expect(xs(7)).toEqual(xs(7));
    expect(xs(7)).not.toEqual(xs(8));
    expect(conflictSibling("a/b (conflicted copy host-1 2026-12-02 101500).txt")).toBe("a/b.txt");
    expect(conflictSibling("a/.bashrc (conflicted copy h 2026-12-02 101500)")).toBe("a/.bashrc");
    expect(conflictSibling("a/b.txt")).toBeNull();
  });
});
