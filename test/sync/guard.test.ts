import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MARKER_NAME } from "../../cli/sync/types.js";
import { diff, snapshot, startWorld, type Snapshot, type SyncClient, type SyncRun, type SyncWorld } from "./harness.js";

/**
 * The delete guard of `drive sync` (issue 10, section 2): a root lost as an
 * unmounted disk loses it, its marker gone, `rm -rf` of most of the tree, a
 * git branch switch, half the tree newly ignored. Each ends with zero
 * remote deletes (the server's tree as it was, nothing in ls --deleted),
 * or, where the change is within the guard, exactly the deletes made.
 * --force then proceeds, once.
 */
/** Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN), for the other-device case. */
const canMount = await (async () => {
  const probe = await mkdtemp(join(tmpdir(), "drive-mount-probe-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "drive-probe", probe], { stdio: "ignore" });
    execFileSync("umount", [probe], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  } finally {
    await rm(probe, { recursive: true, force: true });
  }
})();

describe("sync delete guard", () => {
  let w: SyncWorld;
  let n = 0;
  beforeAll(async () => {
    w = await startWorld();
  });
  afterAll(async () => {
    await w?.stop();
  });

  /** 50 files, ten in each of g0..g4, synced. */
  async function synced(): Promise<{ c: SyncClient; before: Snapshot }> {
    const c = await w.client(`g${++n}`, `guard/${n}`);
    for (let g = 0; g < 5; g++) {
      await mkdir(join(c.root, `g${g}`));
      for (let i = 0; i < 10; i++) await writeFile(join(c.root, `g${g}`, `f${g}${i}.txt`), `file ${g}${i} of ${n}\n`);
    }
    ok(await w.sync(c), "the first sync");
    const before = await w.serverTree(c.remote);
    expect([...before.values()].filter((e) => e.kind === "file")).toHaveLength(50);
    expect(diff(await snapshot(c.root), before)).toEqual([]);
    return { c, before };
  }

  const ok = (r: SyncRun, what: string) => expect(r.code, `${what} exited ${r.code}:\n${r.stderr}\n${r.stdout.slice(-2000)}`).toBe(0);

  /** The run halted, said why, and did nothing. */
  function halted(r: SyncRun, why: RegExp): void {
    expect(r.code, `the sync should have halted:\n${r.stdout.slice(-2000)}`).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(why);
    expect(r.ops.filter((o) => o.outcome === "done"), "a halted run does nothing").toEqual([]);
  }

  /** The server's tree is as it was and nothing was deleted there. */
  async function noRemoteDeletes(c: SyncClient, before: Snapshot): Promise<void> {
    expect(diff(await w.serverTree(c.remote), before), "the server's tree is unchanged").toEqual([]);
    expect(await w.serverDeleted(c.remote), "nothing deleted on the server").toEqual([]);
  }

  const ROOT_LOST = /root_missing|root_empty|marker_missing|device_changed|mounted|marker/i;
  const TOO_MANY = /max_delete|max-delete/i;

  it("halts on a root recreated empty (a disk not mounted), deletes nothing, and carries on once it is back", async () => {
    const { c, before } = await synced();
    await rename(c.root, `${c.root}.away`);
    await mkdir(c.root);
    halted(await w.sync(c), ROOT_LOST);
    await noRemoteDeletes(c, before);
    expect(await readdir(c.root), "nothing was written into the empty root").toEqual([]);

    // Gone altogether: the same, and the root is not made.
    await rm(c.root, { recursive: true });
    halted(await w.sync(c), ROOT_LOST);
    await noRemoteDeletes(c, before);
    await expect(stat(c.root)).rejects.toThrow(/ENOENT/);

    await rename(`${c.root}.away`, c.root);
    const back = await w.sync(c);
    ok(back, "the sync once the disk is back");
    expect(back.ops.filter((o) => o.outcome === "done" && o.op !== "record"), "nothing to do").toEqual([]);
    await noRemoteDeletes(c, before);
  });

  it.skipIf(!canMount)("halts when the root is on another device (a disk unmounted, a stale copy beneath), even with its marker", async () => {
    const c = await w.client(`g${++n}`, `guard/${n}`);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=16m", "drive-sync-test", c.root]);
    let mounted = true;
    try {
      for (let i = 0; i < 50; i++) await writeFile(join(c.root, `f${i}.txt`), `file ${i} on the disk\n`);
      ok(await w.sync(c), "the first sync, on the disk");
      const before = await w.serverTree(c.remote);
      // Beneath the mount point: the marker and an older copy of 30 of the files (20 deletes: within --max-delete).
      const saved = await readFile(join(c.root, MARKER_NAME));
      execFileSync("umount", [c.root]);
      mounted = false;
      await writeFile(join(c.root, MARKER_NAME), saved);
      for (let i = 0; i < 30; i++) await writeFile(join(c.root, `f${i}.txt`), `file ${i} on the disk\n`);
      halted(await w.sync(c), /device_changed|device|mounted/i);
      await noRemoteDeletes(c, before);
    } finally {
      if (mounted) execFileSync("umount", [c.root]);
    }
  });

  it("halts when the marker is gone; --force proceeds once", async () => {
    const { c, before } = await synced();
    await rm(join(c.root, MARKER_NAME));
    halted(await w.sync(c), ROOT_LOST);
    await noRemoteDeletes(c, before);
    ok(await w.sync(c, ["--force"]), "sync --force");
    await stat(join(c.root, MARKER_NAME)); // written again
    await noRemoteDeletes(c, before);
    ok(await w.sync(c), "the next sync, without --force");
    await noRemoteDeletes(c, before);
  });

  it("halts on rm -rf of 60 % of the tree, leaves both sides as they are, and --force deletes once", async () => {
    const { c, before } = await synced();
    for (const g of ["g0", "g1", "g2"]) await rm(join(c.root, g), { recursive: true });
    const local = await snapshot(c.root);
    halted(await w.sync(c), TOO_MANY);
    await noRemoteDeletes(c, before);
    expect(diff(await snapshot(c.root), local), "nothing brought back either").toEqual([]);
    // The guard holds on every run until told.
    halted(await w.sync(c), TOO_MANY);
    await noRemoteDeletes(c, before);

    ok(await w.sync(c, ["--force"]), "sync --force");
    expect(diff(await w.serverTree(c.remote), local)).toEqual([]);
    expect((await w.serverDeleted(c.remote)).filter((p) => p.endsWith(".txt"))).toHaveLength(30);
    const again = await w.sync(c);
    ok(again, "the next sync");
    expect(again.ops.filter((o) => o.op !== "record")).toEqual([]);
  });

  it("--max-delete raises the bar: 30 of 50 pass with --max-delete 30, and halt with --max-delete 29", async () => {
    const { c, before } = await synced();
    for (const g of ["g0", "g1", "g2"]) await rm(join(c.root, g), { recursive: true });
    halted(await w.sync(c, ["--max-delete", "29"]), TOO_MANY);
    await noRemoteDeletes(c, before);
    ok(await w.sync(c, ["--max-delete", "30"]), "sync --max-delete 30");
    expect(diff(await w.serverTree(c.remote), await snapshot(c.root))).toEqual([]);
  });

  it("counts deletes after renames: a folder rename of 40 files is no delete and sends no bytes", async () => {
    const { c } = await synced();
    for (const g of ["g0", "g1", "g2", "g3"]) await rename(join(c.root, g), join(c.root, `renamed-${g}`));
    const r = await w.sync(c);
    ok(r, "the sync of the renames");
    expect(r.ops.filter((o) => o.op === "upload" || o.op === "remote_delete"), "moves, not uploads and deletes").toEqual([]);
    // One move per folder, not one per file: a folder of 10,000 files costs one operation.
    expect(r.ops.filter((o) => o.op === "remote_move").map((o) => `${o.path} -> ${o.to}`).sort()).toEqual(["g0", "g1", "g2", "g3"].map((g) => `${g} -> renamed-${g}`));
    expect(diff(await w.serverTree(c.remote), await snapshot(c.root))).toEqual([]);
  });

  it("a git branch switch past the guard (30 of 50 gone, 10 new, 5 edited) halts with no remote delete", async () => {
    const { c, before } = await synced();
    await switchBranch(c, ["g0", "g1", "g2"]);
    const r = await w.sync(c);
    halted(r, TOO_MANY);
    await noRemoteDeletes(c, before);
    ok(await w.sync(c, ["--force"]), "sync --force");
    expect(diff(await w.serverTree(c.remote), await snapshot(c.root))).toEqual([]);
  });

  it("a git branch switch within the guard (20 of 50 gone, 10 new, 5 edited) syncs exactly, deleting only the 20", async () => {
    const { c } = await synced();
    await switchBranch(c, ["g0", "g1"]);
    ok(await w.sync(c), "the sync of the switch");
    expect(diff(await w.serverTree(c.remote), await snapshot(c.root))).toEqual([]);
    const gone = Array.from({ length: 20 }, (_, i) => `g${Math.floor(i / 10)}/f${Math.floor(i / 10)}${i % 10}.txt`);
    expect((await w.serverDeleted(c.remote)).filter((p) => p.endsWith(".txt")).sort()).toEqual(gone.sort());
  });

  /** What a checkout does: whole folders gone, new files, edits, all at once. */
  async function switchBranch(c: SyncClient, drop: string[]): Promise<void> {
    for (const g of drop) await rm(join(c.root, g), { recursive: true });
    await mkdir(join(c.root, "feature"));
    for (let i = 0; i < 10; i++) await writeFile(join(c.root, "feature", `new${i}.txt`), `new on the branch ${i}\n`);
    for (let i = 0; i < 5; i++) await writeFile(join(c.root, "g4", `f4${i}.txt`), `edited on the branch ${i}\n`);
  }

  it("half the tree newly ignored by .driveignore deletes nothing on the server", async () => {
    const { c, before } = await synced();
    await writeFile(join(c.root, ".driveignore"), "*[02468].txt\n");
    ok(await w.sync(c), "the sync with the new rule");
    const server = await w.serverTree(c.remote);
    expect(diff(server, new Map([...before, [".driveignore", server.get(".driveignore")!]])), "every file still there").toEqual([]);
    expect(await w.serverDeleted(c.remote)).toEqual([]);
    // The rule goes: the files come back into view unchanged, and nothing moves.
    await rm(join(c.root, ".driveignore"));
    ok(await w.sync(c), "the sync without the rule");
    expect(diff(await w.serverTree(c.remote), before)).toEqual([]);
    expect((await w.serverDeleted(c.remote)).filter((p) => p !== ".driveignore")).toEqual([]);
  });

  it("half the tree left out by --exclude deletes nothing on the server, on either side", async () => {
    const { c, before } = await synced();
    const r = await w.sync(c, ["--exclude", "g0/", "--exclude", "g1/", "--exclude", "g2/f2[0-4].txt"]);
    ok(r, "the sync with --exclude");
    expect(r.ops.filter((o) => o.op.includes("delete"))).toEqual([]);
    await noRemoteDeletes(c, before);
    expect(diff(await snapshot(c.root), before), "nor on the disk").toEqual([]);
    ok(await w.sync(c, ["--include", "g3/"]), "the sync with --include");
    await noRemoteDeletes(c, before);
    expect(diff(await snapshot(c.root), before)).toEqual([]);
  });
});
