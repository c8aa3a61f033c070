import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createFilter, loadFilter, readIgnoreFile } from "../../cli/local/filter.js";
import { walkAll } from "../../cli/local/walk.js";

const f = (ignoreFile: string, exclude: string[] = [], include: string[] = []) => createFilter({ ignoreFile, exclude, include });

describe("filters", () => {
  it("follow gitignore: negation, folder-only, anchored and ** patterns", () => {
    const x = f(["*.log", "!keep.log", "build/", "/top.txt", "docs/**/*.tmp", "a/b"].join("\n"));
    expect(x.excludes("x.log", false)).toBe(true);
    expect(x.excludes("deep/y.log", false)).toBe(true);
    expect(x.excludes("keep.log", false)).toBe(false);
    // Folder-only: a file named build is kept, a folder is not, nor what is under it.
    expect(x.excludes("build", false)).toBe(false);
    expect(x.excludes("build", true)).toBe(true);
    expect(x.excludes("src/build", true)).toBe(true);
    expect(x.excludes("build/out.js", false)).toBe(true);
    // Anchored: only at the root.
    expect(x.excludes("top.txt", false)).toBe(true);
    expect(x.excludes("sub/top.txt", false)).toBe(false);
    expect(x.excludes("docs/a/b/c.tmp", false)).toBe(true);
    expect(x.excludes("other/c.tmp", false)).toBe(false);
    // An inner slash anchors too.
    expect(x.excludes("a/b", false)).toBe(true);
    expect(x.excludes("z/a/b", false)).toBe(false);
    // Case-sensitive, as remote paths are.
    expect(x.excludes("X.LOG", false)).toBe(false);
  });

  it("never re-includes a file under an excluded folder (git's rule)", () => {
    const x = f("cache/\n!cache/keep");
    expect(x.excludes("cache/keep", false)).toBe(true);
  });

  it("combines .driveignore, --exclude and --include", () => {
    const x = f("*.o", ["secret/", "!important.o"], ["*.c", "*.o", "src/"]);
    expect(x.excludes("main.c", false)).toBe(false);
    expect(x.excludes("README", false)).toBe(true); // not included
    expect(x.excludes("src/README", false)).toBe(false); // src/ includes all under it
    expect(x.excludes("a.o", false)).toBe(true); // excluded beats included
    expect(x.excludes("important.o", false)).toBe(false); // re-included by a later --exclude "!"
    expect(x.excludes("docs", true)).toBe(false); // folders are walked for included files
    expect(x.excludes("secret", true)).toBe(true);
    expect(x.excludes("secret/x.c", false)).toBe(true);
  });

  it("always leaves out the temporary files of pulls", () => {
    const x = f("");
    expect(x.excludes("d/.a.txt.0123456789abcdef.drive-partial", false)).toBe(true);
    expect(x.excludes("a.txt", false)).toBe(false);
  });

  it("reads .driveignore from the root, which is itself pushed, and refuses a linked one", async () => {
    const root = await mkdtemp(join(tmpdir(), "local-filter-"));
    try {
      expect(await readIgnoreFile(root)).toBeUndefined();
      await writeFile(join(root, ".driveignore"), "tmp/\n*.bak\n");
      await mkdir(join(root, "tmp"));
      await writeFile(join(root, "tmp", "x"), "x");
      await writeFile(join(root, "a.bak"), "x");
      await writeFile(join(root, "a"), "x");
      const filter = await loadFilter(root, { exclude: [], include: [] });
      const entries = await walkAll(root, { filter });
      expect(entries.map((e) => e.path)).toEqual([".driveignore", "a"]);
      const ex = await loadFilter(root, { exclude: [".driveignore"], include: [] });
      expect((await walkAll(root, { filter: ex })).map((e) => e.path)).toEqual(["a"]);
      await rm(join(root, ".driveignore"));
      await writeFile(join(root, "elsewhere"), "*");
      await symlink(join(root, "elsewhere"), join(root, ".driveignore"));
      await expect(readIgnoreFile(root)).rejects.toThrow(/symbolic link/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
