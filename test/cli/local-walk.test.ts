import { execFileSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createFilter } from "../../cli/local/filter.js";
import { comparePaths } from "../../cli/local/path-order.js";
import { walk, walkAll } from "../../cli/local/walk.js";

let root: string;
let outside: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "local-walk-"));
  outside = await mkdtemp(join(tmpdir(), "local-walk-out-"));
});
afterEach(async () => {
  await chmod(join(root, "locked"), 0o755).catch(() => undefined);
  execFileSync("rm", ["-rf", root]); // GNU rm goes past PATH_MAX, fs.rm does not
  await rm(outside, { recursive: true, force: true });
});

const none = createFilter({ exclude: [], include: [] });

async function run(filter = none) {
  const skips: [string, string][] = [];
  const entries = await walkAll(root, { filter, onSkip: (p, r) => skips.push([p, r]) });
  return { entries, paths: entries.map((e) => e.path), skips: skips.sort() };
}

async function put(rel: string, body = "x"): Promise<void> {
  await mkdir(join(root, rel, ".."), { recursive: true });
  await writeFile(join(root, rel), body);
}

describe("walk", () => {
  it("yields files and every folder in path order, with exact stat fields", async () => {
    await put("a/z");
    await put("a-b", "hello");
    await put("a0");
    await put("b/c/d/e");
    await mkdir(join(root, "empty"));
    await put("\u{1F600}");
    await put("\uE000");
    await chmod(join(root, "a0"), 0o755);
    const { entries, paths, skips } = await run();
    expect(skips).toEqual([]);
    expect(paths).toEqual(["a", "a-b", "a/z", "a0", "b", "b/c", "b/c/d", "b/c/d/e", "empty", "\uE000", "\u{1F600}"]);
    expect([...paths].sort(comparePaths)).toEqual(paths);
    const ab = entries.find((e) => e.path === "a-b")!;
    expect(ab).toMatchObject({ kind: "file", size: 5, mode: 0o644 });
    expect(typeof ab.mtimeNs).toBe("bigint");
    expect(entries.find((e) => e.path === "a0")!.mode).toBe(0o755);
    expect(entries.find((e) => e.path === "empty")).toMatchObject({ kind: "folder", size: 0 });
  });

  it("never follows a symlink, to a file or a folder, inside or outside the root", async () => {
    await writeFile(join(outside, "secret"), "s");
    await put("real/f");
    await symlink(outside, join(root, "out"));
    await symlink(join(root, "real"), join(root, "loop"));
    await symlink(join(outside, "secret"), join(root, "real", "link"));
    await symlink("/nonexistent", join(root, "dangling"));
    const { paths, skips } = await run();
    expect(paths).toEqual(["real", "real/f"]);
    expect(skips).toEqual([
      ["dangling", "symlink"],
      ["loop", "symlink"],
      ["out", "symlink"],
      ["real/link", "symlink"],
    ]);
  });

  it("maps names to NFC, and skips both names of a collision", async () => {
    const nfd = "cafe\u0301";
    await put(`${nfd}/x`);
    await put("Ame\u0301lie");
    await put("Am\u00e9lie");
    await put("ok");
    const { entries, paths, skips } = await run();
    expect(paths).toEqual(["caf\u00e9", "caf\u00e9/x", "ok"]);
    expect(entries[0]!.diskPath).toBe(nfd);
    expect(entries[1]!.diskPath).toBe(`${nfd}/x`);
    expect(entries[2]!.diskPath).toBeUndefined();
    expect(skips).toEqual([
      ["Ame\u0301lie", "collision"],
      ["Am\u00e9lie", "collision"],
    ]);
  });

  it("skips names the server would refuse, and FIFOs", async () => {
    await put("bad\u0001name");
    await put("back\\slash");
    await put("fine");
    execFileSync("mkfifo", [join(root, "pipe")]);
    // Bytes that are not UTF-8: a name no path can spell.
    execFileSync("sh", ["-c", `touch "$(printf '${root}/bad\\377')"`]);
    const { paths, skips } = await run();
    expect(paths).toEqual(["fine"]);
    expect(skips.map(([, r]) => r).sort()).toEqual(["unsafe_name", "unsafe_name", "unsafe_name", "unreadable"].sort());
    expect(skips.find(([p]) => p === "pipe")![1]).toBe("unreadable");
  });

  it("skips an unreadable folder and goes on", async () => {
    if (process.getuid?.() === 0) return; // root reads everything: nothing to check
    await put("locked/f");
    await put("next/f");
    await chmod(join(root, "locked"), 0o000);
    const { paths, skips } = await run();
    expect(skips).toEqual([["locked", "unreadable"]]);
    expect(paths).toEqual(["locked", "next", "next/f"]);
  });

  it("walks deep trees, and paths past the server's length stop at the name check", async () => {
    let rel = "";
    for (let i = 0; i < 300; i++) rel += (i ? "/" : "") + "d" + (i % 10);
    await put(rel + "/leaf");
    const { paths, skips } = await run();
    expect(paths.length).toBe(301);
    expect(paths[300]).toBe(rel + "/leaf");
    // 21 segments of 200: 4220 bytes, past the server's 4096 (mkdir -p goes one folder at a time, past PATH_MAX).
    const long = Array.from({ length: 21 }, () => "y".repeat(199)).join("/");
    execFileSync("mkdir", ["-p", long], { cwd: root });
    const again = await run();
    expect(again.skips.length).toBe(1);
    expect(again.skips[0]).toEqual([long, "unsafe_name"]);
    expect(skips).toEqual([]);
  });

  it("does not walk an excluded folder, takes only included files, and stops on abort", async () => {
    await put("keep/a.txt");
    await put("keep/b.log");
    await put("node_modules/x/y.txt");
    const filter = createFilter({ exclude: ["node_modules/"], include: ["*.txt"] });
    const seen: string[] = [];
    const entries = await walkAll(root, {
      filter: { excludes: (p, d) => (seen.push(p), filter.excludes(p, d)) },
    });
    expect(entries.map((e) => e.path)).toEqual(["keep", "keep/a.txt"]);
    expect(seen.some((p) => p.startsWith("node_modules/"))).toBe(false);
    const ac = new AbortController();
    ac.abort(new Error("stop"));
    await expect(walkAll(root, { filter: none, signal: ac.signal })).rejects.toThrow("stop");
  });

  it("refuses a root that is not a folder", async () => {
    await put("file");
    await expect(walkAll(join(root, "file"), { filter: none })).rejects.toThrow(/not a folder/);
    await expect(walkAll(join(root, "missing"), { filter: none })).rejects.toThrow(/cannot walk/);
  });

  it("reports progress and can be stopped early", async () => {
    for (let i = 0; i < 600; i++) await put(`d${i % 3}/f${i}`);
    const counts: number[] = [];
    let n = 0;
    for await (const _ of walk(root, { filter: none, onProgress: (c) => counts.push(c) })) if (++n === 10) break;
    await walkAll(root, { filter: none, onProgress: (c) => counts.push(c) });
    expect(counts.at(-1)).toBe(603);
  });
});
