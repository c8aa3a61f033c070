import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { blake3Hex, conflictSibling, diff, snapshot, startWorld, type Snapshot, type SyncRun, type SyncWorld } from "./harness.js";

/**
 * The full matrix of issue 10: for files and for folders, each change on
 * client A against each change on client B, both made offline from a
 * synced base; then sync A, sync B, sync A, sync B. Every cell must end
 * with both trees equal to each other and to the server, with no content
 * written since the base lost, no conflicted copy identical to its sibling,
 * no content duplicated, and the cell's own outcome (one-sided changes win,
 * edit beats delete, the edit follows a rename, a conflict keeps both).
 *
 * Every cell is its own test. By default all cells share one sync root,
 * each in its own folder, and the same six runs; DRIVE_SYNC_MATRIX=separate
 * plays each alone.
 */

type Act = "create" | "edit" | "delete" | "rename" | "move";
type Kind = "file" | "folder";
/** A side's tag: A, B, or "same" for the same change made on both sides. */
type Tag = "A" | "B" | "same";

/** A change to a tree of texts, applied alike to the disk and to the model. */
type Step = { set: string; text: string } | { rm: string } | { mv: string; to: string };

const ACTS: Act[] = ["create", "edit", "delete", "rename", "move"];

const BASE: Record<Kind, Record<string, string>> = {
  file: { "d/s.txt": "base", "d/keep.txt": "keep", "e/x.txt": "x", "g/y.txt": "y" },
  folder: { "d/s.txt": "base", "d/sub/t.txt": "t", "e/x.txt": "x", "g/y.txt": "y", "keep.txt": "keep" },
};

/** What each change is, per kind: the subject is the file d/s.txt, or the folder d. */
function steps(kind: Kind, act: Act, tag: Tag): Step[] {
  const dest = tag === "B" ? "g" : "e";
  if (kind === "file") {
    switch (act) {
      case "create":
        return [{ set: "d/new.txt", text: `new ${tag}` }];
      case "edit":
        return [{ set: "d/s.txt", text: `edit ${tag}` }];
      case "delete":
        return [{ rm: "d/s.txt" }];
      case "rename":
        return [{ mv: "d/s.txt", to: `d/ren-${tag}.txt` }];
      case "move":
        return [{ mv: "d/s.txt", to: `${dest}/s.txt` }];
    }
  }
  switch (act) {
    case "create":
      return [{ set: `n/from-${tag}.txt`, text: `n ${tag}` }];
    case "edit":
      // An edit inside the folder and a file added to it.
      return [
        { set: "d/s.txt", text: `edit ${tag}` },
        { set: `d/added-${tag}.txt`, text: `added ${tag}` },
      ];
    case "delete":
      return [{ rm: "d" }];
    case "rename":
      return [{ mv: "d", to: `d${tag}` }];
    case "move":
      return [{ mv: "d", to: `${dest}/d` }];
  }
}

async function applyDisk(root: string, s: Step[]): Promise<void> {
  for (const st of s) {
    if ("set" in st) {
      await mkdir(dirname(join(root, st.set)), { recursive: true });
      await writeFile(join(root, st.set), st.text);
    } else if ("rm" in st) await rm(join(root, st.rm), { recursive: true });
    else {
      await mkdir(dirname(join(root, st.to)), { recursive: true });
      await rename(join(root, st.mv), join(root, st.to));
    }
  }
}

const under = (p: string, root: string) => p === root || p.startsWith(`${root}/`);

function applyModel(tree: Map<string, string>, s: Step[]): void {
  for (const st of s) {
    if ("set" in st) tree.set(st.set, st.text);
    else if ("rm" in st) for (const p of [...tree.keys()]) (under(p, st.rm) ? tree.delete(p) : undefined);
    else
      for (const [p, t] of [...tree]) {
        if (!under(p, st.mv)) continue;
        tree.delete(p);
        tree.set(st.to + p.slice(st.mv.length), t);
      }
  }
}

/** The final tree read back as texts. */
class Final {
  readonly files = new Map<string, string>();
  readonly folders = new Set<string>();
  readonly copies: Array<{ path: string; sibling: string; text: string }> = [];
  constructor(snap: Snapshot, texts: Map<string, string>) {
    for (const [p, e] of snap) {
      if (e.kind === "folder") this.folders.add(p);
      else {
        const text = texts.get(e.hash) ?? `(unknown content ${e.hash.slice(0, 12)})`;
        const sibling = conflictSibling(p);
        if (sibling) this.copies.push({ path: p, sibling, text });
        else this.files.set(p, text);
      }
    }
  }
  text(path: string): string | undefined {
    return this.files.get(path);
  }
  /** How many files (copies included) hold the text. */
  count(text: string): number {
    return [...this.files.values()].filter((t) => t === text).length + this.copies.filter((c) => c.text === text).length;
  }
  /** Files under a folder, as relative path -> text. */
  within(folder: string): Record<string, string> {
    return Object.fromEntries([...this.files].filter(([p]) => under(p, folder)).map(([p, t]) => [p.slice(folder.length + 1), t]));
  }
}

/** path holds one of the two texts and one conflicted copy beside it holds the other: both contents survive. */
function conflictOn(f: Final, path: string, texts: [string, string]): void {
  const won = f.text(path);
  expect(texts, `${path} holds one of the two versions`).toContain(won);
  const lost = texts.find((t) => t !== won)!;
  expect(f.copies.map((c) => [c.sibling, c.text]), "one conflicted copy, beside it, with the other version").toEqual([[path, lost]]);
}

/** The folder's subtree is at exactly one of the places, whole, and nowhere else. */
function oneOf(f: Final, places: string[], files: Record<string, string>): string {
  const at = places.filter((p) => Object.keys(f.within(p)).length > 0);
  expect(at, `the subject ends at exactly one of ${places.join(", ")}`).toHaveLength(1);
  expect(f.within(at[0]!)).toEqual(files);
  return at[0]!;
}

/** A cell's own outcome, for cells where both sides touched the same subject. The rest are checked against the model. */
const OWN: Record<string, (f: Final) => void> = {
  // Files.
  "file create create": (f) => conflictOn(f, "d/new.txt", ["new A", "new B"]),
  "file edit edit": (f) => conflictOn(f, "d/s.txt", ["edit A", "edit B"]),
  "file edit delete": (f) => expect(f.text("d/s.txt"), "the edit survives the delete").toBe("edit A"),
  "file delete edit": (f) => expect(f.text("d/s.txt"), "the edit survives the delete").toBe("edit B"),
  "file edit rename": (f) => {
    expect(f.text("d/ren-B.txt"), "the edit follows the renamed file").toBe("edit A");
    expect(f.text("d/s.txt")).toBeUndefined();
  },
  "file rename edit": (f) => {
    expect(f.text("d/ren-A.txt"), "the edit follows the renamed file").toBe("edit B");
    expect(f.text("d/s.txt")).toBeUndefined();
  },
  "file edit move": (f) => {
    expect(f.text("g/s.txt"), "the edit follows the moved file").toBe("edit A");
    expect(f.text("d/s.txt")).toBeUndefined();
  },
  "file move edit": (f) => {
    expect(f.text("e/s.txt"), "the edit follows the moved file").toBe("edit B");
    expect(f.text("d/s.txt")).toBeUndefined();
  },
  "file delete delete": (f) => expect(f.text("d/s.txt")).toBeUndefined(),
  // A delete against a rename or a move: the file is gone from the old path; at the new one at most once (either answer keeps its content as a version).
  "file delete rename": (f) => deletedOrAt(f, "d/ren-B.txt"),
  "file rename delete": (f) => deletedOrAt(f, "d/ren-A.txt"),
  "file delete move": (f) => deletedOrAt(f, "g/s.txt"),
  "file move delete": (f) => deletedOrAt(f, "e/s.txt"),
  "file rename rename": (f) => renamedOnce(f, ["d/ren-A.txt", "d/ren-B.txt"]),
  "file move move": (f) => renamedOnce(f, ["e/s.txt", "g/s.txt"]),
  "file rename move": (f) => renamedOnce(f, ["d/ren-A.txt", "g/s.txt", "g/ren-A.txt"]),
  "file move rename": (f) => renamedOnce(f, ["e/s.txt", "d/ren-B.txt", "e/ren-B.txt"]),

  // Folders.
  "folder edit edit": (f) => {
    conflictOn(f, "d/s.txt", ["edit A", "edit B"]);
    expect(f.within("d")).toMatchObject({ "added-A.txt": "added A", "added-B.txt": "added B", "sub/t.txt": "t" });
  },
  "folder edit delete": (f) => editBeatsFolderDelete(f, "A"),
  "folder delete edit": (f) => editBeatsFolderDelete(f, "B"),
  "folder edit rename": (f) => editFollows(f, "A", "dB"),
  "folder rename edit": (f) => editFollows(f, "B", "dA"),
  "folder edit move": (f) => editFollows(f, "A", "g/d"),
  "folder move edit": (f) => editFollows(f, "B", "e/d"),
  "folder delete delete": (f) => expect(f.within("d")).toEqual({}),
  "folder delete rename": (f) => folderDeletedOrAt(f, "dB"),
  "folder rename delete": (f) => folderDeletedOrAt(f, "dA"),
  "folder delete move": (f) => folderDeletedOrAt(f, "g/d"),
  "folder move delete": (f) => folderDeletedOrAt(f, "e/d"),
  "folder rename rename": (f) => folderOnce(f, ["dA", "dB"]),
  "folder move move": (f) => folderOnce(f, ["e/d", "g/d"]),
  "folder rename move": (f) => folderOnce(f, ["dA", "g/d", "g/dA"]),
  "folder move rename": (f) => folderOnce(f, ["e/d", "dB", "e/dB"]),
  "folder create create": (f) => expect(f.within("n"), "both new files, no conflict").toEqual({ "from-A.txt": "n A", "from-B.txt": "n B" }),
};

/** The cells where both versions of one path survive as a file and a conflicted copy. */
const CONFLICTS = new Set(["file create create", "file edit edit", "folder edit edit"]);

function deletedOrAt(f: Final, renamed: string): void {
  expect(f.text("d/s.txt")).toBeUndefined();
  expect([undefined, "base"]).toContain(f.text(renamed));
  expect(f.count("base")).toBeLessThanOrEqual(1);
}

function renamedOnce(f: Final, places: string[]): void {
  expect(f.text("d/s.txt")).toBeUndefined();
  expect(f.count("base"), "one name wins: the file once, no duplicate").toBe(1);
  expect(places.filter((p) => f.text(p) === "base"), `the file is at one of ${places.join(", ")}`).toHaveLength(1);
}

/** Folder d deleted on one side, edited (a file edited, one added) on the other: the new and edited files survive, the untouched rest goes. */
function editBeatsFolderDelete(f: Final, editor: "A" | "B"): void {
  expect(f.within("d")).toEqual({ "s.txt": `edit ${editor}`, [`added-${editor}.txt`]: `added ${editor}` });
  expect(f.folders.has("d/sub"), "the untouched subfolder was deleted").toBe(false);
}

/** The folder renamed on one side, edited inside on the other: the edit and the new file follow it. */
function editFollows(f: Final, editor: "A" | "B", to: string): void {
  expect(f.within(to)).toEqual({ "s.txt": `edit ${editor}`, [`added-${editor}.txt`]: `added ${editor}`, "sub/t.txt": "t" });
  expect(f.within("d")).toEqual({});
  expect(f.folders.has("d"), "nothing left at the old name").toBe(false);
}

function folderDeletedOrAt(f: Final, renamed: string): void {
  expect(f.within("d")).toEqual({});
  const there = f.within(renamed);
  if (Object.keys(there).length) expect(there).toEqual({ "s.txt": "base", "sub/t.txt": "t" });
  expect(f.count("base")).toBeLessThanOrEqual(1);
}

function folderOnce(f: Final, places: string[]): void {
  expect(f.within("d")).toEqual({});
  oneOf(f, places, { "s.txt": "base", "sub/t.txt": "t" });
  expect(f.count("base"), "one name wins: no duplicate").toBe(1);
}

interface Cell {
  kind: Kind;
  a: Act;
  b: Act | "none";
  /** Both sides make the very same change. */
  same: boolean;
}

const cells: Cell[] = [];
for (const kind of ["file", "folder"] as const) {
  for (const a of ACTS) for (const b of ["none", ...ACTS] as const) cells.push({ kind, a, b, same: false });
  for (const a of ["create", "edit", "rename", "move"] as const) cells.push({ kind, a, b: a, same: true });
}
const name = (c: Cell) => `${c.kind}: A ${c.a}, B ${c.same ? `the same ${c.b}` : c.b}`;

const cellId = (c: Cell) => `${c.kind}-${c.a}-${c.same ? "same" : c.b}`;

/** The entries under `prefix/`, relative to it. */
function within(s: Snapshot, prefix: string): Snapshot {
  return new Map([...s].filter(([p]) => p.startsWith(`${prefix}/`)).map(([p, e]) => [p.slice(prefix.length + 1), e]));
}

/** What each run did, an op a line. */
type Story = Array<{ what: string; ops: string[] }>;

/** Checks a run went through, and tells its story (each operation) for the failure messages. */
function ok(r: SyncRun, what: string, story: Story): void {
  story.push({ what, ops: r.ops.map((o) => `${o.op} ${o.path}${o.to !== undefined ? ` -> ${o.to}` : ""} (${o.why}${o.outcome !== "done" ? `, ${o.outcome}` : ""})`) });
  expect(r.code, `${what} exited ${r.code}:\n${r.stderr}\n${r.stdout.slice(-3000)}`).toBe(0);
  expect(r.ops.filter((o) => o.outcome === "failed"), `${what}: failed operations`).toEqual([]);
}

/** Where each cell ends: both clients' trees and the server's, and both trees just before the first sync after the changes. */
interface Outcome {
  finalA: Snapshot;
  finalB: Snapshot;
  server: Snapshot;
  offline: [Snapshot, Snapshot];
}

/**
 * Plays cells on two clients: under `prefix(cell)/` of one root each (all
 * cells in the same six runs), the base, A's and B's first syncs, both
 * sides' changes, then sync A, B, A, and B again only when A's last run
 * changed the server (a conflicted copy it sent, say).
 */
async function play(w: SyncWorld, tag: string, remote: string, list: Cell[], prefix: (c: Cell) => string, story: Story): Promise<Map<Cell, Outcome>> {
  const a = await w.client(`${tag}-a`, remote);
  const b = await w.client(`${tag}-b`, remote);
  const at = (c: Cell, s: Step[]): Step[] => {
    const p = prefix(c);
    const j = (x: string) => (p ? `${p}/${x}` : x);
    return s.map((st) => ("set" in st ? { set: j(st.set), text: st.text } : "rm" in st ? { rm: j(st.rm) } : { mv: j(st.mv), to: j(st.to) }));
  };
  for (const c of list) await applyDisk(a.root, at(c, Object.entries(BASE[c.kind]).map(([p, text]) => ({ set: p, text }))));
  ok(await w.sync(a), "A's first sync", story);
  ok(await w.sync(b), "B's first sync", story);
  expect(diff(await snapshot(b.root), await snapshot(a.root)), "the synced base").toEqual([]);
  for (const c of list) {
    await applyDisk(a.root, at(c, stepsOf(c, "A")));
    await applyDisk(b.root, at(c, stepsOf(c, "B")));
  }
  const offline = [await snapshot(a.root), await snapshot(b.root)] as const;
  ok(await w.sync(a), "sync A", story);
  ok(await w.sync(b), "sync B", story);
  const third = await w.sync(a);
  ok(third, "sync A again", story);
  if (third.ops.some((o) => o.op === "upload" || o.op.startsWith("remote_"))) ok(await w.sync(b), "sync B again", story);
  const [finalA, finalB, server] = [await snapshot(a.root), await snapshot(b.root), await w.serverTree(remote)];
  const cut = (s: Snapshot, c: Cell) => (prefix(c) ? within(s, prefix(c)) : s);
  return new Map(list.map((c) => [c, { finalA: cut(finalA, c), finalB: cut(finalB, c), server: cut(server, c), offline: [cut(offline[0], c), cut(offline[1], c)] }]));
}

function stepsOf(cell: Cell, side: "A" | "B"): Step[] {
  const tag = cell.same ? "same" : side;
  if (side === "A") return steps(cell.kind, cell.a, tag);
  return cell.b === "none" ? [] : steps(cell.kind, cell.b, tag);
}

/** One cell's outcome against the rules, and against its own expectation. */
function check(cell: Cell, o: Outcome): void {
  expect(diff(o.finalA, o.finalB), "A and B agree").toEqual([]);
  expect(diff(o.finalA, o.server), "A and the server agree").toEqual([]);
  const base = BASE[cell.kind];
  const [stepsA, stepsB] = [stepsOf(cell, "A"), stepsOf(cell, "B")];
  const texts = new Map<string, string>();
  for (const t of [...Object.values(base), ...[...stepsA, ...stepsB].flatMap((s) => ("text" in s ? [s.text] : []))]) texts.set(blake3Hex(t), t);
  const f = new Final(o.finalA, texts);

  // Nothing written since the base is lost, nothing is duplicated, no conflicted copy repeats its sibling.
  for (const [hash, text] of texts) {
    const counts = o.offline.map((s) => [...s.values()].filter((e) => e.hash === hash).length);
    if (!Object.values(base).includes(text)) expect(f.count(text), `"${text}", written since the base, survives`).toBeGreaterThanOrEqual(1);
    expect(f.count(text), `"${text}" is not duplicated`).toBeLessThanOrEqual(Math.max(...counts));
  }
  for (const c of f.copies) expect(f.text(c.sibling), `${c.path} differs from its sibling`).not.toBe(c.text);
  expect([...f.files.values()].filter((t) => t.startsWith("(unknown")), "no content from nowhere").toEqual([]);

  // What neither side touched stays as it was.
  const subject = cell.kind === "file" ? "d/s.txt" : "d";
  for (const [p, text] of Object.entries(base)) if (!under(p, subject)) expect(f.text(p), `${p} is untouched`).toBe(text);

  const key = `${cell.kind} ${cell.a} ${cell.b}`;
  const own = OWN[key];
  if (own && !cell.same) {
    own(f);
    if (!CONFLICTS.has(key)) expect(f.copies, "no conflicted copy").toEqual([]);
  } else {
    // One-sided, independent or identical changes: exactly both applied, no conflicted copy.
    const model = new Map(Object.entries(base));
    applyModel(model, stepsA);
    applyModel(model, stepsB);
    expect(Object.fromEntries(f.files)).toEqual(Object.fromEntries([...model].sort()));
    expect(f.copies, "no conflicted copy").toEqual([]);
    const folders = new Set([...model.keys()].flatMap((p) => p.split("/").slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join("/"))));
    expect([...f.folders].sort(), "the folders the files need, and no other").toEqual([...folders].sort());
  }
}

/** Runs a check with the story of the syncs (the ops under prefix) appended to its failure. */
function told(story: Story, fn: () => void | Promise<void>, prefix = ""): Promise<void> {
  return Promise.resolve()
    .then(fn)
    .catch((err: Error) => {
      const mine = (op: string) => !prefix || op.includes(` ${prefix}/`);
      err.message += `\n\nwhat each sync did${prefix ? ` under ${prefix}/` : ""}:\n  ${story.map((r) => `${r.what}: ${r.ops.filter(mine).join("; ") || "nothing"}`).join("\n  ")}`;
      throw err;
    });
}

/**
 * By default every cell lives in its own folder of one sync root, and all
 * cells go through the same six runs (a few seconds in all); each cell is
 * still its own test, checking its own folder. DRIVE_SYNC_MATRIX=separate
 * gives each cell its own remote folder, clients and runs (minutes), to
 * tell a cell that fails only beside others.
 */
const SEPARATE = process.env.DRIVE_SYNC_MATRIX === "separate";

describe.skipIf(SEPARATE)("sync matrix", () => {
  let w: SyncWorld;
  const story: Story = [];
  let outcomes: Map<Cell, Outcome> | undefined;
  let failure: Error | undefined;
  beforeAll(async () => {
    w = await startWorld();
    outcomes = await play(w, "all", "m/all", cells, cellId, story).catch((err: Error) => {
      failure = err;
      return undefined;
    });
  }, 300_000);
  afterAll(async () => {
    await w?.stop();
  });

  test("every sync run goes through", () =>
    told(story, () => {
      if (failure) throw failure;
    }));

  test.each(cells.map((c) => [name(c), c] as const))("%s", (_name, cell) =>
    told(story, () => {
      if (!outcomes) throw new Error(`the runs did not finish: ${failure?.message}`);
      check(cell, outcomes.get(cell)!);
    }, cellId(cell)),
  );
});

describe.runIf(SEPARATE).concurrent("sync matrix, each cell alone", () => {
  let w: SyncWorld;
  beforeAll(async () => {
    w = await startWorld();
  });
  afterAll(async () => {
    await w?.stop();
  });

  test.each(cells.map((c) => [name(c), c] as const))("%s", async (_name, cell) => {
    const story: Story = [];
    await told(story, async () => {
      const outcome = await play(w, cellId(cell), `m/${cellId(cell)}`, [cell], () => "", story);
      check(cell, outcome.get(cell)!);
    });
  });
});
