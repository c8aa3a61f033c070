/**
 * The planner, property-tested (CanopyCheck-style): a random base tree,
 * synced on both sides, perturbed at random on each side; then rounds of
 * scan, plan and execute (the operations shuffled, some dropped as if they
 * failed) in the model world until the planner plans nothing. It must
 * finish within a bound, never throw, leave both sides equal, let one-sided
 * changes win, and never lose content written since the base.
 *
 * fast-check (maintained, shrinking, replayable seeds) rather than a loop of
 * our own: a failure prints the seed and the smallest counterexample it
 * found. DRIVE_PLAN_RUNS sets the number of cases (default 300); DRIVE_PLAN_SEED
 * and DRIVE_PLAN_PATH replay a failure fast-check printed.
 */
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { planSync } from "../../cli/sync/plan.js";
import type { NodeKind, PlanInput } from "../../cli/sync/types.js";
import { describe as describeOp, World } from "./sync-model.js";

const RUNS = Number(process.env.DRIVE_PLAN_RUNS ?? 300);
const MAX_ROUNDS = 40;
const NAMES = ["a", "b", "c.txt", "A", "d"];
const POOL = ["x", "yy", "zzz"];

type Action = { kind: "create" | "mkdir" | "edit" | "delete" | "move" | "chmod"; a: number; b: number; c: number; d: number };
const action = fc.record({
  kind: fc.constantFrom("create", "create", "mkdir", "edit", "delete", "move", "move", "chmod"),
  a: fc.nat(50),
  b: fc.nat(50),
  c: fc.nat(50),
  d: fc.nat(10),
}) as fc.Arbitrary<Action>;

let fresh = 0;
function content(d: number): string {
  return d < POOL.length ? POOL[d]! : `c${++fresh}`;
}

/** A view of one side to perturb: its paths and how to change them. */
interface Side {
  paths(): Array<[string, NodeKind]>;
  put(p: string, kind: NodeKind, hash: string, mode: number): void;
  remove(p: string): void;
  move(from: string, to: string): void;
  hash(p: string): string;
}

function localSide(w: World): Side {
  return {
    paths: () => [...w.disk].map(([p, e]) => [p, e.kind]),
    hash: (p) => w.disk.get(p)?.hash ?? "",
    put(p, kind, hash, mode) {
      if (!w.mkdirParents(p)) return;
      const e = w.disk.get(p);
      if (e && e.kind !== kind) return;
      w.disk.set(p, { kind, hash, mode, mtimeUs: kind === "file" ? 1000 + Number(w.ver()) : 0, ino: e?.ino ?? w.ino(), ver: w.ver() });
    },
    remove(p) {
      for (const q of [...w.disk.keys()]) if (q === p || q.startsWith(`${p}/`)) w.disk.delete(q);
    },
    move(from, to) {
      if (!w.mkdirParents(to)) return;
      w.diskMove(from, to);
    },
  };
}

function remoteSide(w: World): Side {
  return {
    paths: () => [...w.remoteTree()].map(([p, n]) => [p, n.kind]),
    hash: (p) => w.live(p)?.hash ?? "",
    put(p, kind, hash, mode) {
      if (w.putClash(p, kind)) return;
      const cur = w.live(p);
      if (cur && cur.kind !== kind) return;
      w.serverPut(p, { id: cur?.id ?? w.idForNew(p, kind), kind, hash, mode, mtimeUs: kind === "file" ? 5000 + fresh++ : 0 });
    },
    remove(p) {
      for (const q of [...w.server.keys()]) if (q === p || q.startsWith(`${p}/`)) w.serverDelete(q);
    },
    move(from, to) {
      if (!w.putClash(to, "folder")) w.serverMove(from, to);
    },
  };
}

function perturb(side: Side, acts: Action[]): void {
  for (const act of acts) {
    const all = side.paths().sort((x, y) => (x[0] < y[0] ? -1 : 1));
    const folders = ["", ...all.filter(([, k]) => k === "folder").map(([p]) => p)];
    const files = all.filter(([, k]) => k === "file").map(([p]) => p);
    const join = (parent: string, name: string) => (parent ? `${parent}/${name}` : name);
    const at = join(folders[act.a % folders.length]!, NAMES[act.b % NAMES.length]!);
    const exists = all.some(([p]) => p === at);
    switch (act.kind) {
      case "create":
        if (!exists) side.put(at, "file", content(act.d), 0o644);
        break;
      case "mkdir":
        if (!exists) side.put(at, "folder", "", 0);
        break;
      case "edit":
        if (files.length) side.put(files[act.c % files.length]!, "file", content(act.d), 0o644);
        break;
      case "chmod":
        if (files.length) {
          const f = files[act.c % files.length]!;
          side.put(f, "file", side.hash(f), act.d % 2 ? 0o755 : 0o600);
        }
        break;
      case "delete":
        if (all.length) side.remove(all[act.c % all.length]![0]);
        break;
      case "move": {
        if (!all.length) break;
        const from = all[act.c % all.length]![0];
        if (exists || at === from || at.startsWith(`${from}/`)) break;
        side.move(from, at);
        break;
      }
    }
  }
}

/** The base: built on disk, then the same on the server and in Synced, as a finished sync leaves it. */
function baseWorld(acts: Action[]): World {
  const w = new World();
  perturb(localSide(w), acts);
  for (const [p, e] of w.disk) {
    const id = w.freshId();
    w.serverPut(p, { id, kind: e.kind, hash: e.hash, mode: e.mode, mtimeUs: e.mtimeUs });
    w.synced.set(p, { id, kind: e.kind, hash: e.hash, size: e.kind === "file" ? e.hash.length : 0, mode: e.mode, mtimeUs: e.mtimeUs, stat: w.stat(p)! });
  }
  return w;
}

function view(tree: Iterable<[string, { kind: NodeKind; hash: string; mode: number; mtimeUs: number }]>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [p, n] of tree) out.set(p, n.kind === "folder" ? "folder" : `${n.hash}:${n.mode.toString(8)}:${n.mtimeUs}`);
  return out;
}

function contents(v: Map<string, string>): Set<string> {
  return new Set([...v.values()].filter((x) => x !== "folder").map((x) => x.split(":")[0]!));
}

function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Outcome {
  world: World;
  rounds: number;
  ops: number;
  before: { base: Map<string, string>; local: Map<string, string>; remote: Map<string, string> };
}

function runToQuiet(base: Action[], localActs: Action[], remoteActs: Action[], seed: number, dropRate: number, crashRate = 0): Outcome {
  fresh = 0;
  const w = baseWorld(base);
  const baseView = view(w.disk);
  perturb(localSide(w), localActs);
  perturb(remoteSide(w), remoteActs);
  const before = { base: baseView, local: view(w.disk), remote: view(w.remoteTree()) };
  const rnd = mulberry(seed);
  let ops = 0;
  for (let round = 1; round <= MAX_ROUNDS; round++) {
    const input: PlanInput = {
      synced: w.synced,
      local: w.scan(),
      remote: w.remoteTree(),
      maxDelete: { count: 1e9 },
      force: true,
      conflictName: (p) => {
        const dot = p.lastIndexOf(".");
        return dot > p.lastIndexOf("/") + 1 ? `${p.slice(0, dot)} (cc)${p.slice(dot)}` : `${p} (cc)`;
      },
    };
    const plan = planSync(input);
    expect(plan.halted).toBeUndefined();
    if (plan.ops.length === 0) return { world: w, rounds: round, ops, before };
    w.log.push(`-- round ${round}: ${plan.ops.length} ops`);
    const order = plan.ops.map((op) => ({ op, k: rnd() })).sort((x, y) => x.k - y.k);
    for (const { op } of order) {
      if (rnd() < dropRate) {
        w.log.push(`drop ${describeOp(op)}`);
        continue;
      }
      w.execute(op, { crash: rnd() < crashRate });
      ops++;
    }
  }
  throw new Error(`no quiescence after ${MAX_ROUNDS} rounds:\n${w.log.slice(-60).join("\n")}`);
}

function check(o: Outcome, opts: { oneSided?: boolean } = {}): void {
  const local = view(o.world.disk);
  const remote = view(o.world.remoteTree());
  const dump = () => `\nlog:\n${o.world.log.join("\n")}\nlocal: ${JSON.stringify([...local])}\nremote: ${JSON.stringify([...remote])}\nbefore: ${JSON.stringify({ base: [...o.before.base], local: [...o.before.local], remote: [...o.before.remote] })}`;
  expect(remote, `the two sides differ${dump()}`).toEqual(local);
  // Nothing written since the base is lost: every new content is somewhere at the end.
  const now = contents(local);
  const old = contents(o.before.base);
  for (const c of [...contents(o.before.local), ...contents(o.before.remote)]) {
    if (!old.has(c)) expect(now.has(c), `content ${c} was lost${dump()}`).toBe(true);
  }
  const same = (a: Map<string, string>, b: Map<string, string>) => a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
  if (opts.oneSided === false) return;
  if (same(o.before.remote, o.before.base)) expect(local, `a local-only change did not win${dump()}`).toEqual(o.before.local);
  if (same(o.before.local, o.before.base)) expect(local, `a remote-only change did not win${dump()}`).toEqual(o.before.remote);
}

const replay = { ...(process.env.DRIVE_PLAN_SEED ? { seed: Number(process.env.DRIVE_PLAN_SEED) } : {}), ...(process.env.DRIVE_PLAN_PATH ? { path: process.env.DRIVE_PLAN_PATH } : {}) };
const trees = [fc.array(action, { maxLength: 12 }), fc.array(action, { maxLength: 6 }), fc.array(action, { maxLength: 6 }), fc.nat()] as const;

describe("planSync, property-tested against the model", () => {
  test("converges, keeps every new content, and one-sided changes win", () => {
    fc.assert(
      fc.property(...trees, fc.constantFrom(0, 0.25), (base, l, r, seed, drop) => {
        check(runToQuiet(base, l, r, seed, drop));
      }),
      { numRuns: RUNS, ...replay },
    );
  });

  test("the same when the process dies between an operation and its record", () => {
    fc.assert(
      fc.property(...trees, (base, l, r, seed) => {
        // Not one-sided wins here: a record lost to a crash between two moves that swap a file and a folder's name can end as a conflicted copy (kept content, odd name).
        check(runToQuiet(base, l, r, seed, 0.1, 0.2), { oneSided: false });
      }),
      { numRuns: RUNS, ...replay },
    );
  });
});
