import { constants, existsSync } from "node:fs";
import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Fence, FenceRefused, localPathFor, prepareParent, verifyFinal } from "../../cli/local/fence.js";

let root: string;
let outside: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "local-fence-"));
  outside = await mkdtemp(join(tmpdir(), "local-fence-out-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

const HOSTILE = [
  "",
  ".",
  "..",
  "../x",
  "a/../../x",
  "a/./b",
  "a//b",
  "a/",
  "/etc/passwd",
  "a\\..\\..\\x",
  "a\u0000b",
  "a\nb",
  "a\u001bb",
  "a\u007fb",
  "a\u009bb",
  "cafe\u0301", // not NFC
  "\ud800",
  "x".repeat(256),
  ("y".repeat(200) + "/").repeat(21) + "z",
];

describe("fence", () => {
  it("refuses every hostile name, and writes nothing", async () => {
    const fence = await Fence.open(root);
    for (const name of HOSTILE) {
      await expect(fence.localPathFor(name), JSON.stringify(name)).rejects.toBeInstanceOf(FenceRefused);
      await expect(fence.prepareParent(name + "/f"), JSON.stringify(name)).rejects.toBeInstanceOf(FenceRefused);
      await expect(fence.verifyFinal(name), JSON.stringify(name)).rejects.toBeInstanceOf(FenceRefused);
    }
    expect(await readdir(root)).toEqual([]);
    expect(await readdir(outside)).toEqual([]);
  });

  it("gives a path inside the root for a good name", async () => {
    expect(await localPathFor(root, "a/b c/\u00e9.txt")).toBe(join(await realRoot(), "a/b c/\u00e9.txt"));
  });

  it("refuses a name that differs only by normalisation from one on disk, at any depth", async () => {
    await mkdir(join(root, "cafe\u0301"));
    await writeFile(join(root, "\u212Aelvin"), "x"); // KELVIN SIGN: its NFC is a plain K
    const fence = await Fence.open(root);
    await expect(fence.localPathFor("caf\u00e9/x")).rejects.toThrow(/normalisation/);
    await expect(fence.localPathFor("Kelvin")).rejects.toThrow(/normalisation/);
    await expect(prepareParent(root, "caf\u00e9/x")).rejects.toThrow(/normalisation/);
    expect(await fence.localPathFor("other")).toBe(join(await realRoot(), "other"));
  });

  it("creates parents one by one, and refuses a symlink inside the root pointing outside", async () => {
    const fence = await Fence.open(root);
    expect(await fence.prepareParent("a/b/c/f")).toBe(join(await realRoot(), "a/b/c"));
    expect(existsSync(join(root, "a/b/c"))).toBe(true);
    await symlink(outside, join(root, "a", "link"));
    await expect(fence.prepareParent("a/link/f")).rejects.toThrow(/symbolic link/);
    await expect(fence.prepareParent("a/link/deeper/f")).rejects.toThrow(/symbolic link/);
    await expect(fence.verifyFinal("a/link/f")).rejects.toThrow(/symbolic link/);
    // A link to a folder inside the root is refused all the same.
    await symlink(join(root, "a", "b"), join(root, "inner"));
    await expect(fence.prepareParent("inner/f")).rejects.toThrow(/symbolic link/);
    // A link at the final name is not replaced.
    await symlink(join(outside, "target"), join(root, "a", "b", "c", "f"));
    await expect(fence.verifyFinal("a/b/c/f")).rejects.toThrow(/symbolic link/);
    expect(await readdir(outside)).toEqual([]);
  });

  it("refuses a file where a folder is expected, and a folder where a file goes", async () => {
    await writeFile(join(root, "file"), "x");
    await mkdir(join(root, "dir"));
    await expect(prepareParent(root, "file/f")).rejects.toThrow(/a file where a folder is expected/);
    await expect(verifyFinal(root, "dir")).rejects.toThrow(/a folder is where the file goes/);
    expect(await verifyFinal(root, "file")).toBe(join(await realRoot(), "file"));
  });

  it("sees a folder swapped for a symlink after it was checked", async () => {
    const fence = await Fence.open(root);
    await fence.prepareParent("d/f");
    await rename(join(root, "d"), join(root, "d-moved"));
    await symlink(outside, join(root, "d"));
    await expect(fence.verifyFinal("d/f")).rejects.toThrow(/symbolic link/);
    // Swapped for another real folder: refused too, it is not the one checked.
    await rm(join(root, "d"));
    await mkdir(join(root, "d"));
    await expect(fence.verifyFinal("d/f")).rejects.toThrow(/replaced/);
  });

  it("a pinned folder keeps writes in the checked folder even if a name above is swapped for a link", async () => {
    const fence = await Fence.open(root);
    const pin = await fence.pinFolder("d/e/f");
    try {
      // An attacker moves the checked folder away and plants a link to the outside in its place.
      await rename(join(root, "d"), join(root, "d-moved"));
      await symlink(outside, join(root, "d"));
      await mkdir(join(outside, "e"));
      const fh = await open(join(pin.path, ".f.tmp"), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      await fh.writeFile("data");
      await fh.close();
      await rename(join(pin.path, ".f.tmp"), join(pin.path, "f"));
      expect(await readdir(join(outside, "e"))).toEqual([]);
      if (process.platform === "linux") expect(await readFile(join(root, "d-moved/e/f"), "utf8")).toBe("data");
      // And the check before the rename sees the swap.
      await expect(fence.verifyFinal("d/e/f")).rejects.toThrow(/symbolic link/);
    } finally {
      await pin.close();
    }
  });

  it("knows the names the pull made without listing again", async () => {
    const fence = await Fence.open(root);
    expect(await fence.localPathFor("a")).toBe(join(await realRoot(), "a")); // lists the root
    await writeFile(join(root, "a"), "x");
    fence.noteWritten("a");
    expect(await fence.localPathFor("a")).toBe(join(await realRoot(), "a"));
  });
});

async function realRoot(): Promise<string> {
  return (await Fence.open(root)).root;
}
