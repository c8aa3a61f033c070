/** What sync never syncs, and names it must be able to make: found by a fresh-eyes attack on `drive sync`. */
import { describe, expect, it } from "vitest";
import { createFilter } from "../../cli/local/filter.js";
import { unknownPaths } from "../../cli/sync/sync-run.js";
import { conflictName } from "../../cli/tree/conflict-name.js";

describe("sync names", () => {
  it("a conflicted copy of a 255-byte name still fits in 255 bytes, extension and tag kept", () => {
    const long = `${"x".repeat(251)}.txt`;
    const copy = conflictName(`h/${long}`, new Date(2026, 11, 2, 16, 37, 4), "vm");
    const name = copy.slice(2);
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255);
    expect(name).toMatch(/^x+ \(conflicted copy vm 2026-12-02 163704\)\.txt$/);
    const wide = conflictName("é".repeat(127), new Date(2026, 11, 2), "vm");
    expect(Buffer.byteLength(wide)).toBeLessThanOrEqual(255);
    expect(wide).not.toContain("\uFFFD");
  });

  it("a marker at any depth (a nested sync root) and drive's own cache under the root are unknown", () => {
    const unknown = unknownPaths({ unknown: new Set() }, createFilter({ exclude: [], include: [] }), [new Map()], new Set([".cache/drive"]));
    expect(unknown(".drive-sync")).toBe(true);
    expect(unknown("sub/.drive-sync")).toBe(true);
    expect(unknown(".cache/drive/sync/abc.mdb")).toBe(true);
    expect(unknown(".cache/other")).toBe(false);
    expect(unknown("sub/notes.txt")).toBe(false);
  });
});
