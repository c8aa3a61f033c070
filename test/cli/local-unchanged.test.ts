import { mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createFilter } from "../../cli/local/filter.js";
import { isRacy, isUnchanged } from "../../cli/local/unchanged.js";
import type { IndexEntry, LocalEntry } from "../../cli/local/types.js";
import { walkAll } from "../../cli/local/walk.js";

const record = (e: LocalEntry, recordedNs?: bigint): IndexEntry => ({ ...e, contentHash: Buffer.alloc(32), hashKind: 1, revision: 1, recordedNs });

describe("isUnchanged", () => {
  it("holds for the same stat, and fails on any change of size, times, inode or mode", async () => {
    const root = await mkdtemp(join(tmpdir(), "local-unchanged-"));
    try {
      await writeFile(join(root, "f"), "abc");
      const old = new Date(Date.now() - 60_000);
      await utimes(join(root, "f"), old, old);
      const filter = createFilter({ exclude: [], include: [] });
      const [disk] = await walkAll(root, { filter });
      // Recorded a while after its last change (utimes sets ctime to now): not racy.
      const rec = record(disk!, BigInt(Date.now() + 1000) * 1_000_000n);
      expect(isUnchanged(disk!, rec)).toBe(true);
      expect(isUnchanged(disk!, undefined)).toBe(false);
      for (const change of [{ size: 4 }, { mtimeNs: disk!.mtimeNs + 1n }, { ctimeNs: disk!.ctimeNs + 1n }, { ino: disk!.ino + 1n }, { dev: 1n }, { mode: 0o755 }, { kind: "folder" as const }]) {
        expect(isUnchanged({ ...disk!, ...change }, rec), JSON.stringify(Object.keys(change))).toBe(false);
      }
      // Rewritten in place with the old mtime put back: ctime still tells.
      await writeFile(join(root, "f"), "xyz");
      await utimes(join(root, "f"), old, old);
      const [again] = await walkAll(root, { filter });
      expect(again!.mtimeNs).toBe(disk!.mtimeNs);
      expect(isUnchanged(again!, rec)).toBe(false);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("never trusts an entry recorded within a timestamp tick of its last change", () => {
    const t = 1_700_000_000_123_000_000n;
    const e = { mtimeNs: t, ctimeNs: t };
    expect(isRacy({ ...e, recordedNs: t + 50_000_000n })).toBe(true);
    expect(isRacy({ ...e, recordedNs: t + 500_000_000n })).toBe(false);
    // Whole-second times: a coarse file system, a 2 s tick.
    const s = 1_700_000_000_000_000_000n;
    expect(isRacy({ mtimeNs: s, ctimeNs: s, recordedNs: s + 1_500_000_000n })).toBe(true);
    expect(isRacy({ mtimeNs: s, ctimeNs: s, recordedNs: s + 3_000_000_000n })).toBe(false);
    const disk: LocalEntry = { path: "f", kind: "file", size: 1, mtimeNs: t, ctimeNs: t, mode: 0o644, dev: 1n, ino: 2n };
    expect(isUnchanged(disk, record(disk, t + 10_000_000n))).toBe(false);
  });
});
