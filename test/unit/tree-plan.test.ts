import { create } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ContentHashKind, EntryKind, FileInfoSchema } from "../../gen/drive/v1/types_pb.js";
import type { IndexEntry, LocalEntry } from "../../cli/local/types.js";
import { conflictName } from "../../cli/tree/conflict-name.js";
import { isUnchanged, makeFilter } from "../../cli/tree/local-side.js";
import { planPull } from "../../cli/tree/plan-pull.js";
import { planPush } from "../../cli/tree/plan-push.js";
import type { RemoteEntry } from "../../cli/tree/remote-list.js";
import { timestampOfNs } from "../../cli/tree/tree-attrs.js";
import { runParallel, Slots, withSlots } from "../../cli/transfer/run-parallel.js";

const hashOf = (n: number) => Buffer.alloc(32, n);
const noFilter = makeFilter({ exclude: [], include: [] });

function disk(path: string, content: number, opts: Partial<LocalEntry> = {}): LocalEntry {
  return { path, kind: "file", size: 10 + content, mtimeNs: 1_700_000_000_000_000_000n + BigInt(content) * 1000n, ctimeNs: 5n, mode: 0o644, dev: 1n, ino: BigInt(path.length * 1000 + content), ...opts };
}
function folder(path: string): LocalEntry {
  return { path, kind: "folder", size: 0, mtimeNs: 1n, ctimeNs: 1n, mode: 0o755, dev: 1n, ino: 9n };
}
function recorded(d: LocalEntry, content: number): IndexEntry {
  return { ...d, contentHash: hashOf(content), hashKind: 1, revision: 1 };
}
function remote(path: string, content: number, d?: LocalEntry, kind: "file" | "folder" = "file"): RemoteEntry {
  const info = create(FileInfoSchema, {
    path,
    kind: kind === "file" ? EntryKind.FILE : EntryKind.FOLDER,
    contentHash: kind === "file" ? hashOf(content) : new Uint8Array(),
    contentHashKind: kind === "file" ? ContentHashKind.BLAKE3 : ContentHashKind.UNSPECIFIED,
    revision: 1n,
    mode: d?.mode ?? 0o644,
    mtime: timestampOfNs(d?.mtimeNs ?? 0n),
  });
  return { path, kind, info };
}
const index = (entries: IndexEntry[]) => {
  const m = new Map(entries.map((e) => [e.path, e]));
  return { get: (p: string) => m.get(p) };
};

describe("planPush", () => {
  it("recognises an unchanged tree from the index alone and sends what differs", () => {
    const a = disk("a.txt", 1);
    const b = disk("d/b.txt", 2);
    const c = disk("d/c.txt", 3);
    const plan = planPush({
      local: [a, folder("d"), b, c, folder("empty")],
      index: index([recorded(a, 1), recorded(b, 2)]),
      isUnchanged,
      remote: [remote("a.txt", 1, a), remote("d/b.txt", 9, b), remote("gone.txt", 4)],
      filter: noFilter,
      delete: true,
      maxDelete: { percent: 50 },
    });
    expect(plan.unchanged.map((u) => u.entry.path)).toEqual(["a.txt"]);
    // b: the index vouches for its hash, which differs from the remote's; c: never recorded, must be hashed.
    expect(plan.send.map((s) => [s.entry.path, !!s.knownHash])).toEqual([["d/b.txt", true], ["d/c.txt", false]]);
    expect(plan.folders.map((f) => f.path)).toEqual(["empty"]);
    expect(plan.deletes.map((d) => d.path)).toEqual(["gone.txt"]);
    expect(plan.refused).toBeNull();
  });

  it("refuses past --max-delete, and leaves filtered remote paths alone", () => {
    const remoteSide = [remote("x/1", 1), remote("x/2", 2), remote("keep.log", 3)];
    const base = { local: [], index: index([]), isUnchanged, remote: remoteSide, delete: true } as const;
    const p1 = planPush({ ...base, filter: makeFilter({ exclude: ["*.log"], include: [] }), maxDelete: { percent: 50 } });
    expect(p1.deletes.map((d) => d.path)).toEqual(["x/1", "x/2"]);
    expect(p1.refused).toMatch(/refusing to delete 2 of the 2 remote entries/);
    expect(planPush({ ...base, filter: noFilter, maxDelete: { count: 3 } }).refused).toBeNull();
    expect(planPush({ ...base, filter: noFilter, maxDelete: { percent: 100 } }).refused).toBeNull();
    expect(planPush({ ...base, filter: noFilter, maxDelete: { count: 2 } }).refused).toMatch(/--max-delete 2/);
  });

  it("a changed mtime or mode is sent (attributes), even with the same content", () => {
    const a = disk("a", 1);
    const moved = { ...a, mtimeNs: a.mtimeNs + 5000n };
    const plan = planPush({ local: [moved], index: index([recorded(moved, 1)]), isUnchanged, remote: [remote("a", 1, a)], filter: noFilter, delete: false, maxDelete: { percent: 50 } });
    expect(plan.send.map((s) => s.entry.path)).toEqual(["a"]);
  });

  it("property: every local file is sent or unchanged once; unchanged ones are vouched for and equal; deletes are remote-only", () => {
    const tree = fc.uniqueArray(fc.record({ name: fc.constantFrom("a", "b", "c", "d/e", "d/f", "g/h/i", "ü", "x y"), local: fc.integer({ min: 0, max: 2 }), rec: fc.integer({ min: 0, max: 2 }), rem: fc.integer({ min: 0, max: 2 }), stat: fc.boolean() }), { selector: (r) => r.name });
    fc.assert(
      fc.property(tree, fc.boolean(), (rows, del) => {
        const local: LocalEntry[] = [];
        const recs: IndexEntry[] = [];
        const rem: RemoteEntry[] = [];
        for (const r of rows) {
          const d = r.local ? disk(r.name, r.local) : undefined;
          if (d) local.push(d);
          if (d && r.rec) recs.push(recorded(r.stat ? d : { ...d, ino: 1234n }, r.rec));
          if (r.rem) rem.push(remote(r.name, r.rem, d));
        }
        const plan = planPush({ local, index: index(recs), isUnchanged, remote: rem, filter: noFilter, delete: del, maxDelete: { percent: 100 } });
        const seen = [...plan.send.map((s) => s.entry.path), ...plan.unchanged.map((u) => u.entry.path)].sort();
        expect(seen).toEqual(local.map((l) => l.path).sort());
        for (const u of plan.unchanged) {
          const row = rows.find((r) => r.name === u.entry.path)!;
          expect(row.stat && row.rec === row.rem && row.rec > 0).toBe(true);
        }
        for (const d of plan.deletes) expect(local.some((l) => l.path === d.path)).toBe(false);
        if (!del) expect(plan.deletes).toEqual([]);
      }),
    );
  });
});

describe("planPull", () => {
  it("never replaces or deletes a local file the index does not vouch for", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.record({ name: fc.constantFrom("a", "b", "c/d", "c/e", "f"), local: fc.integer({ min: 0, max: 2 }), rec: fc.integer({ min: 0, max: 2 }), rem: fc.integer({ min: 0, max: 2 }), stat: fc.boolean() }), { selector: (r) => r.name }),
        (rows) => {
          const local: LocalEntry[] = [];
          const recs: IndexEntry[] = [];
          const rem: RemoteEntry[] = [];
          for (const r of rows) {
            const d = r.local ? disk(r.name, r.local) : undefined;
            if (d) local.push(d);
            if (d && r.rec) recs.push(recorded(r.stat ? d : { ...d, size: 1 }, r.rec));
            if (r.rem) rem.push(remote(r.name, r.rem, d));
          }
          const plan = planPull({ remote: rem, local, index: index(recs), isUnchanged, filter: noFilter, delete: true, maxDelete: { percent: 100 } });
          const vouched = (p: string) => {
            const r = rows.find((x) => x.name === p)!;
            return r.local > 0 && r.rec > 0 && r.stat;
          };
          for (const f of plan.files) if (f.op === "fetch" && f.disk) expect(vouched(f.disk.path)).toBe(true);
          // Deletes are drive's files (recorded); those not vouched by stat are read again before they go (deleteLocal).
          for (const d of plan.deletes) expect(rows.find((x) => x.name === d.path)!.rec > 0).toBe(true);
          for (const k of plan.kept) expect(vouched(k.path)).toBe(false);
          for (const u of plan.unchanged) expect(vouched(u.disk.path)).toBe(true);
          // Every remote file is handled exactly once.
          const handled = [...plan.files.map((f) => f.remote.path), ...plan.unchanged.map((u) => u.remote.path)].sort();
          expect(handled).toEqual(rem.map((r) => r.path).sort());
        },
      ),
    );
  });

  it("keeps folders that remote paths pass through and removes the others, deepest first", () => {
    const plan = planPull({
      remote: [remote("keep/x", 1)],
      local: [folder("keep"), folder("old"), folder("old/deeper")],
      index: index([]),
      isUnchanged,
      filter: noFilter,
      delete: true,
      maxDelete: { percent: 50 },
    });
    expect(plan.folderDeletes.map((f) => f.path)).toEqual(["old/deeper", "old"]);
    expect(plan.files.map((f) => f.op)).toEqual(["fetch"]);
  });
});

describe("conflictName", () => {
  const when = new Date(2026, 11, 2, 5, 4, 3);
  it("puts the tag before the last extension, in local time", () => {
    expect(conflictName("docs/report.final.pdf", when, "box")).toBe("docs/report.final (conflicted copy box 2026-12-02 050403).pdf");
    expect(conflictName(".bashrc", when, "box")).toBe(".bashrc (conflicted copy box 2026-12-02 050403)");
    expect(conflictName("a/Makefile", when, "my/host")).toBe("a/Makefile (conflicted copy my-host 2026-12-02 050403)");
  });
});

describe("Slots", () => {
  it("one limit holds across nested runParallel calls under withSlots", async () => {
    const slots = new Slots(3);
    let now = 0;
    let peak = 0;
    const leaf = async () => {
      now++;
      peak = Math.max(peak, now);
      await new Promise((r) => setImmediate(r));
      now--;
    };
    // Five "files" at once, each with eight parts in up to six lanes: thirty lanes, three slots.
    await Promise.all(Array.from({ length: 5 }, () => withSlots(slots, () => runParallel([...Array(8).keys()], 6, leaf))));
    expect(peak).toBe(3);
  });
});
