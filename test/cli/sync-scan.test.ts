import { execFileSync } from "node:child_process";
import { copyFile, link, mkdir, mkdtemp, rename, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createFilter } from "../../cli/local/filter.js";
import { scanLocal } from "../../cli/sync/scan-local.js";
import { MARKER_NAME, type LocalScan, type ScanOptions, type SyncedNode } from "../../cli/sync/types.js";

let root: string;
let counter = 0;
const skips: Array<[string, string]> = [];
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "sync-scan-"));
  skips.length = 0;
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const scan = (synced: ReadonlyMap<string, SyncedNode> = new Map(), over: Partial<ScanOptions> = {}) =>
  scanLocal({
    root,
    filter: createFilter({ exclude: [], include: [] }),
    synced,
    settleMs: 0,
    signal: AbortSignal.timeout(60_000),
    newId: () => `new${++counter}`,
    onSkip: (p, reason) => skips.push([p, reason]),
    ...over,
  });

/** Synced as an execution would have recorded the scan: every node agreed, with its stat. */
function agreed(s: LocalScan): Map<string, SyncedNode> {
  return new Map([...s.tree].map(([p, { unstable: _, ...n }]) => [p, n]));
}
const ids = (s: LocalScan) => Object.fromEntries([...s.tree].map(([p, n]) => [p, n.id]));
const b3 = (s: string) => new Blake3Hasher().update(Buffer.from(s)).digestBuffer().toString("hex");
/** Past the racy window of unchanged.ts (100 ms), so the next scan may trust the stat. */
const settle = () => sleep(150);

async function put(rel: string, content: string): Promise<void> {
  await mkdir(join(root, rel, ".."), { recursive: true });
  await writeFile(join(root, rel), content);
}

describe("scanLocal", () => {
  it("lists files and folders with content, mode and mtime, leaving the marker out", async () => {
    await put("a/x.txt", "x");
    await put("b.txt", "bee");
    await put(".driveignore", "*.tmp\n");
    await put(MARKER_NAME, "{}");
    await mkdir(join(root, "empty"));
    await utimes(join(root, "b.txt"), 1_700_000_000.123456, 1_700_000_000.123456);
    const s = await scan();
    expect([...s.tree.keys()].sort()).toEqual([".driveignore", "a", "a/x.txt", "b.txt", "empty"]);
    expect(s.tree.get("b.txt")).toMatchObject({ kind: "file", hash: b3("bee"), size: 3, mode: 0o644, mtimeUs: 1_700_000_000_123_456 });
    expect(s.tree.get("a")).toMatchObject({ kind: "folder", hash: "", size: 0, mode: 0, mtimeUs: 0 });
    expect(s.bytesHashed).toBe(1 + 3 + 6);
    expect(new Set(Object.values(ids(s))).size).toBe(5);
    expect(s.unknown.size).toBe(0);
  });

  it("hashes empty, small and large files alike (large ones streamed)", async () => {
    const big = "0123456789abcdef".repeat(200_000); // 3.2 MB: several reads
    await put("empty", "");
    await put("big", big);
    const s = await scan();
    expect(s.tree.get("empty")).toMatchObject({ hash: b3(""), size: 0 });
    expect(s.tree.get("big")).toMatchObject({ hash: b3(big), size: big.length });
    expect(s.bytesHashed).toBe(big.length);
  });

  it("reads nothing again when Synced vouches for every stat, and keeps every id", async () => {
    await put("a/x.txt", "x");
    await put("a/y.txt", "y");
    await settle();
    const first = await scan();
    const second = await scan(agreed(first));
    expect(second.bytesHashed).toBe(0);
    expect(ids(second)).toEqual(ids(first));
    // An edit of the same size is read again.
    await put("a/x.txt", "X");
    const third = await scan(agreed(first));
    expect(third.bytesHashed).toBe(1);
    expect(third.tree.get("a/x.txt")!.hash).toBe(b3("X"));
    expect(third.tree.get("a/x.txt")!.id).toBe(first.tree.get("a/x.txt")!.id);
  });

  it("reads a file again whose stat was recorded in the same tick it changed (racy)", async () => {
    await put("x", "x");
    const first = await scan(); // recorded at once: racy
    expect((await scan(agreed(first))).bytesHashed).toBe(1);
  });

  it("follows renames of files and folders by inode", async () => {
    await put("docs/a.txt", "a");
    await put("docs/deep/b.txt", "b");
    await put("c.txt", "c");
    await settle();
    const first = await scan();
    const before = ids(first);
    await rename(join(root, "docs"), join(root, "papers"));
    await rename(join(root, "c.txt"), join(root, "papers/c2.txt"));
    const s = await scan(agreed(first));
    expect(ids(s)).toEqual({
      papers: before.docs,
      "papers/a.txt": before["docs/a.txt"],
      "papers/deep": before["docs/deep"],
      "papers/deep/b.txt": before["docs/deep/b.txt"],
      "papers/c2.txt": before["c.txt"],
    });
    // A swap by rename keeps each file's id with its inode, not its path.
    await rename(join(root, "papers/a.txt"), join(root, "t"));
    await rename(join(root, "papers/c2.txt"), join(root, "papers/a.txt"));
    await rename(join(root, "t"), join(root, "papers/c2.txt"));
    const swapped = await scan(agreed(s));
    expect(swapped.tree.get("papers/a.txt")!.id).toBe(before["c.txt"]);
    expect(swapped.tree.get("papers/c2.txt")!.id).toBe(before["docs/a.txt"]);
  });

  it("follows a rename by content when the inode changed (a copy to another disk, then a delete)", async () => {
    await put("a.txt", "unique content");
    await put("dup1", "same");
    await put("dup2", "same");
    await settle();
    const first = await scan();
    for (const [from, to] of [["a.txt", "moved/a.txt"], ["dup1", "dup1-moved"]]) {
      await mkdir(join(root, to!, ".."), { recursive: true });
      await copyFile(join(root, from!), join(root, to!));
      await rm(join(root, from!));
    }
    const s = await scan(agreed(first));
    expect(s.tree.get("moved/a.txt")!.id).toBe(first.tree.get("a.txt")!.id);
    // Two Synced files held that content: no guess.
    expect(s.tree.get("dup1-moved")!.id).toMatch(/^new/);
    // A copy whose source is still there is a new file.
    await copyFile(join(root, "moved/a.txt"), join(root, "copy.txt"));
    const again = await scan(agreed(s));
    expect(again.tree.get("copy.txt")!.id).toMatch(/^new/);
    expect(again.tree.get("moved/a.txt")!.id).toBe(first.tree.get("a.txt")!.id);
  });

  it("never gives one id twice: hard links, and a new file where a renamed one was", async () => {
    await put("a", "a");
    await settle();
    const first = await scan();
    const id = first.tree.get("a")!.id;
    await link(join(root, "a"), join(root, "b"));
    await link(join(root, "a"), join(root, "0"));
    const linked = await scan(agreed(first));
    expect(linked.tree.get("a")!.id).toBe(id); // the link at Synced's path keeps it
    expect(new Set(Object.values(ids(linked))).size).toBe(3);
    await rm(join(root, "b"));
    await rm(join(root, "0"));
    await rename(join(root, "a"), join(root, "moved"));
    await put("a", "a"); // same path and content as the one renamed away
    const s = await scan(agreed(first));
    expect(s.tree.get("moved")!.id).toBe(id);
    expect(s.tree.get("a")!.id).not.toBe(id);
    expect(new Set(Object.values(ids(s))).size).toBe(2);
  });

  it("leaves symlinks out as unknown, and says so", async () => {
    await put("real.txt", "r");
    await symlink("real.txt", join(root, "link"));
    await mkdir(join(root, "d"));
    await symlink("..", join(root, "d/up"));
    const s = await scan();
    expect([...s.tree.keys()].sort()).toEqual(["d", "real.txt"]);
    expect([...s.unknown].sort()).toEqual(["d/up", "link"]);
    expect(skips).toEqual(expect.arrayContaining([["link", "symlink"], ["d/up", "symlink"]]));
  });

  it.skipIf(process.getuid?.() === 0)("leaves an unreadable file out as unknown", async () => {
    await put("secret", "s");
    const { chmod } = await import("node:fs/promises");
    await chmod(join(root, "secret"), 0);
    const s = await scan();
    expect(s.tree.has("secret")).toBe(false);
    expect([...s.unknown]).toEqual(["secret"]);
  });

  it("leaves names that collide in NFC out as unknown, by both spellings", async () => {
    await put("caf\u00e9", "nfc");
    await put("cafe\u0301", "nfd");
    const s = await scan();
    expect(s.tree.size).toBe(0);
    expect(s.unknown.has("caf\u00e9")).toBe(true);
    expect(skips.map(([, r]) => r)).toEqual(["collision", "collision"]);
  });

  it("leaves a FIFO out as unknown", async () => {
    await put("real.txt", "r");
    execFileSync("mkfifo", [join(root, "pipe")]);
    const s = await scan();
    expect([...s.tree.keys()]).toEqual(["real.txt"]);
    expect([...s.unknown]).toEqual(["pipe"]);
    expect(skips).toEqual([["pipe", "unreadable"]]);
  });

  it("marks files changed within settleMs unstable", async () => {
    await put("old", "o");
    await utimes(join(root, "old"), 1_600_000_000, 1_600_000_000);
    await sleep(300); // its ctime too
    await put("fresh", "f");
    const s = await scan(new Map(), { settleMs: 250 });
    expect(s.tree.get("fresh")!.unstable).toBe(true);
    expect(s.tree.get("old")!.unstable).toBeUndefined();
    expect(s.tree.get("fresh")!.hash).toBe(b3("f"));
  });

  it("stops when the signal aborts", async () => {
    await put("a", "a");
    await expect(scan(new Map(), { signal: AbortSignal.abort(new Error("stop")) })).rejects.toThrow("stop");
  });

  it("rescans 10,000 unchanged small files fast", async () => {
    for (let d = 0; d < 100; d++) {
      await mkdir(join(root, `d${d}`));
      await Promise.all(Array.from({ length: 100 }, (_, f) => writeFile(join(root, `d${d}/f${f}.txt`), `file ${d}/${f}`)));
    }
    await settle();
    let t = performance.now();
    const first = await scan();
    const cold = performance.now() - t;
    const synced = agreed(first);
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      t = performance.now();
      const s = await scan(synced);
      times.push(performance.now() - t);
      expect(s.bytesHashed).toBe(0);
      expect(s.tree.size).toBe(10_100);
    }
    console.log(`scan of 10,000 files: first (hashing all) ${cold.toFixed(0)} ms, warm ${times.map((x) => x.toFixed(0)).join(", ")} ms`);
    expect(Math.min(...times)).toBeLessThan(1000);
  });
});
