/** The planner on cases the property test does not aim at: the guard, unknown and unstable paths, and a large rename. */
import { describe, expect, test } from "vitest";
import { planSync } from "../../cli/sync/plan.js";
import type { MaxDelete, Plan, PlanInput } from "../../cli/sync/types.js";
import { World } from "./sync-model.js";

/** A world where files (path -> content) are synced on both sides. */
function synced(files: Record<string, string>): World {
  const w = new World();
  for (const [p, hash] of Object.entries(files)) {
    w.mkdirParents(p);
    w.disk.set(p, { kind: "file", hash, mode: 0o644, mtimeUs: 1, ino: w.ino(), ver: w.ver() });
  }
  for (const [p, e] of w.disk) {
    const id = w.freshId();
    w.serverPut(p, { id, kind: e.kind, hash: e.hash, mode: e.mode, mtimeUs: e.mtimeUs });
    w.synced.set(p, { id, kind: e.kind, hash: e.hash, size: e.hash.length, mode: e.mode, mtimeUs: e.mtimeUs, stat: w.stat(p)! });
  }
  return w;
}

function plan(w: World, opts: Partial<Pick<PlanInput, "unknown" | "force">> & { maxDelete?: MaxDelete; unstable?: string[] } = {}): Plan {
  const local = w.scan();
  for (const p of opts.unstable ?? []) local.set(p, { ...local.get(p)!, unstable: true });
  return planSync({
    synced: w.synced,
    local,
    remote: w.remoteTree(),
    maxDelete: opts.maxDelete ?? { percent: 50, floor: 10 },
    force: opts.force ?? false,
    unknown: opts.unknown,
    conflictName: (p) => `${p} (conflicted copy)`,
  });
}

const many = (n: number, dir = "d") => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${dir}/f${i}`, `c${i}`]));
const types = (p: Plan) => p.ops.map((o) => o.type);

describe("planSync cases", () => {
  test("a local folder rename of 2,000 files is one server-side move", () => {
    const w = synced(many(2000));
    w.diskMove("d", "e");
    const p = plan(w);
    expect(p.ops).toEqual([expect.objectContaining({ type: "remote_move", from: "d", to: "e", kind: "folder" })]);
  });

  test("a remote folder rename is one local move, and an edit inside it here follows it", () => {
    const w = synced(many(50));
    w.serverMove("d", "e");
    w.disk.set("d/f3", { ...w.disk.get("d/f3")!, hash: "edited", ver: w.ver() });
    const p = plan(w);
    expect(p.ops).toEqual([expect.objectContaining({ type: "local_move", from: "d", to: "e" })]);
    w.execute(p.ops[0]!);
    const next = plan(w);
    expect(next.ops).toEqual([expect.objectContaining({ type: "upload", path: "e/f3", why: "local_edit" })]);
  });

  test("deleting 60 % of the tree halts and deletes nothing; --force once goes on", () => {
    const w = synced(many(50));
    for (let i = 0; i < 30; i++) w.disk.delete(`d/f${i}`);
    const p = plan(w);
    expect(p.halted?.reason).toBe("max_delete");
    expect(p.ops).toEqual([]);
    expect(p.halted?.message).toMatch(/30 of 50/);
    expect(types(plan(w, { force: true })).filter((t) => t === "remote_delete")).toHaveLength(30);
  });

  test("a few deletes stay under the floor", () => {
    const w = synced(many(3));
    w.disk.delete("d/f0");
    w.disk.delete("d/f1");
    expect(types(plan(w))).toEqual(["remote_delete", "remote_delete"]);
  });

  test("renames are not counted as deletes", () => {
    const w = synced(many(40));
    for (let i = 0; i < 30; i++) w.diskMove(`d/f${i}`, `d/g${i}`);
    const p = plan(w);
    expect(p.halted).toBeUndefined();
    expect(types(p).every((t) => t === "remote_move")).toBe(true);
  });

  test("an empty local root halts (a disk that did not come up); a small tree emptied on purpose goes through", () => {
    const w = synced(many(20));
    w.disk.clear();
    expect(plan(w).halted?.reason).toBe("root_empty");
    expect(plan(w, { force: true }).halted).toBeUndefined();
    const small = synced(many(3));
    small.disk.clear();
    expect(plan(small).halted).toBeUndefined();
    expect(types(plan(small))).toEqual(["remote_delete", "remote_delete", "remote_delete", "remote_delete"]);
  });

  test("a new ignore rule never turns into deletes on either side", () => {
    const w = synced({ ...many(20, "keep"), ...many(20, "logs") });
    const unknown = (p: string) => p === "logs" || p.startsWith("logs/");
    for (const p of [...w.disk.keys()]) if (unknown(p)) w.disk.delete(p); // the filter hides them: the scan does not see them
    expect(plan(w, { unknown }).ops).toEqual([]);
  });

  test("a file still being written is neither sent, replaced nor taken for deleted", () => {
    const w = synced({ "a.txt": "old", "b.txt": "old" });
    w.disk.set("a.txt", { ...w.disk.get("a.txt")!, hash: "half", ver: w.ver() });
    w.serverPut("b.txt", { ...w.live("b.txt")!, hash: "remote edit" });
    expect(plan(w, { unstable: ["a.txt"] }).ops.map((o) => o.type)).toEqual(["download"]);
    w.disk.set("b.txt", { ...w.disk.get("b.txt")!, hash: "writing", ver: w.ver() });
    expect(plan(w, { unstable: ["a.txt", "b.txt"] }).ops).toEqual([]);
  });

  test("the same content written on both sides is recorded, not a conflict", () => {
    const w = synced({ "a.txt": "old" });
    w.disk.set("a.txt", { ...w.disk.get("a.txt")!, hash: "same" });
    w.serverPut("a.txt", { ...w.live("a.txt")!, hash: "same" });
    w.disk.set("n.txt", { kind: "file", hash: "new", mode: 0o644, mtimeUs: 1, ino: w.ino(), ver: w.ver() });
    w.serverPut("n.txt", { id: "r1", kind: "file", hash: "new", mode: 0o644, mtimeUs: 1 });
    const p = plan(w);
    expect(types(p)).toEqual(["record", "record"]);
    expect(p.notes).toEqual([]);
  });

  test("edits on both sides: the local one becomes a conflicted copy, and both are said", () => {
    const w = synced({ "a.txt": "old" });
    w.disk.set("a.txt", { ...w.disk.get("a.txt")!, hash: "mine", ver: w.ver() });
    w.serverPut("a.txt", { ...w.live("a.txt")!, hash: "theirs" });
    const p = plan(w);
    expect(p.ops).toEqual([expect.objectContaining({ type: "conflict_copy", path: "a.txt", to: "a.txt (conflicted copy)" })]);
    expect(p.notes[0]?.why).toBe("conflict");
  });

  test("an edit beats a delete, and the delete is reported", () => {
    const w = synced({ "a.txt": "old", "b.txt": "other" });
    w.disk.delete("a.txt");
    w.serverPut("a.txt", { ...w.live("a.txt")!, hash: "edited" });
    const p = plan(w);
    expect(p.ops).toEqual([expect.objectContaining({ type: "download", path: "a.txt", why: "edit_beats_delete" })]);
    expect(p.notes[0]?.why).toBe("edit_beats_delete");
  });

  test("a folder deleted here while files were added to it on the server keeps them", () => {
    const w = synced({ "d/a": "1" });
    for (const p of [...w.disk.keys()]) w.disk.delete(p);
    w.serverPut("d/new", { id: "r9", kind: "file", hash: "new", mode: 0o644, mtimeUs: 1 });
    const p = plan(w, { force: true });
    expect(p.ops.map((o) => `${o.type} ${"path" in o ? o.path : ""}`).sort()).toEqual(["download d/new", "remote_delete d/a"]);
  });

  test("ten thousand unchanged files plan nothing, quickly enough to be a no-op", () => {
    const w = synced(Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`d${i % 100}/f${i}`, `c${i}`])));
    const input = { local: w.scan(), remote: w.remoteTree() };
    const started = performance.now();
    const p = planSync({ synced: w.synced, ...input, maxDelete: { percent: 50, floor: 10 }, force: false, conflictName: (x) => x });
    console.log(`planSync, 10,000 unchanged files: ${(performance.now() - started).toFixed(0)} ms`);
    expect(p.ops).toEqual([]);
  });
});
