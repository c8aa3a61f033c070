import { planMoves } from "./plan-moves.js";
import { planPaths } from "./plan-paths.js";
import { Busy, lowerBound, nameOf, parentOf, SideTree } from "./plan-tree.js";
import type { LocalNode, MaxDelete, Plan, PlanInput, PlanSync, SyncHalt, SyncNode, SyncOp, Tree } from "./types.js";

/**
 * The planner (types.ts has the contract): moves by identity first, then
 * the path-by-path merge of the rest, then the guard. Pure: no I/O, no
 * clock, the same plan for the same trees. A round plans what it safely
 * can; whatever waits (a move behind another, a folder behind its files)
 * is planned in a later round from the trees as they are then.
 */
export const planSync: PlanSync = (input) => {
  const hidden = hiddenPaths(input);
  const synced = visible(input.synced, hidden);
  const syncedIds = new Map<string, string>();
  for (const [p, n] of synced) syncedIds.set(n.id, p);
  const local = new SideTree("local", visible(input.local, hidden), synced, syncedIds);
  const remote = new SideTree("remote", visible(input.remote, hidden), synced, syncedIds);

  const empty = emptyRoot(input, synced);
  if (empty) return { ops: [], halted: empty, notes: [] };

  const ops: SyncOp[] = [];
  const notes: Plan["notes"] = [];
  const busy = new Busy();
  planMoves({ synced, local, remote, busy, ops });
  const taken = new Set<string>([...input.synced.keys(), ...input.local.keys(), ...input.remote.keys()]);
  planPaths({
    synced,
    syncedIds,
    local,
    remote,
    busy,
    ops,
    notes,
    copyName: (p) => freeName(input.conflictName(p), taken),
    hiddenUnder: (side, p) => hidden.under(side, p),
  });

  const halted = input.force ? undefined : overDeleting(input.maxDelete, synced, ops);
  if (halted) return { ops: [], halted, notes };
  return { ops, notes };
};

/**
 * The local root came up empty (but for its marker) while Synced holds more
 * files than --max-delete lets go: said as what it most likely is, a disk
 * that is not there, rather than as too many deletes. A small tree emptied
 * on purpose goes through, as its deletes would.
 */
function emptyRoot(input: PlanInput, synced: Tree<SyncNode>): SyncHalt | undefined {
  if (input.force || input.local.size > 0) return undefined;
  if (fileCount(synced) <= deleteAllowance(input.maxDelete, synced)) return undefined;
  return { reason: "root_empty", message: "the local folder is empty but held synced files: nothing was deleted; if you emptied it on purpose, run again with --force" };
}

/** --max-delete, per side, counting file deletes (renames are moves, not deletes) against the Synced files. */
function overDeleting(max: MaxDelete, synced: Tree<SyncNode>, ops: SyncOp[]): SyncHalt | undefined {
  const files = fileCount(synced);
  const allowed = deleteAllowance(max, synced);
  let local = 0;
  let remote = 0;
  for (const op of ops) {
    if (op.type === "local_delete" && op.local.kind === "file") local++;
    if (op.type === "remote_delete" && op.kind === "file") remote++;
  }
  const worst = local >= remote ? { n: local, where: "here" } : { n: remote, where: "on the server" };
  if (worst.n <= allowed) return undefined;
  const limit = "count" in max ? `--max-delete ${max.count}` : `--max-delete ${max.percent}% (at least ${max.floor})`;
  return {
    reason: "max_delete",
    message: `sync would delete ${worst.n} of ${files} synced files ${worst.where}, over ${limit}: nothing was deleted; check what happened, then run again with --force (once) or a higher --max-delete`,
  };
}

/** How many file deletes a side may make: --max-delete against the Synced files (sync-run holds it for a whole run). */
export function deleteAllowance(max: MaxDelete, synced: Tree<SyncNode>): number {
  return "count" in max ? max.count : Math.max(max.floor, Math.floor((fileCount(synced) * max.percent) / 100));
}

function fileCount(tree: Tree<SyncNode>): number {
  let files = 0;
  for (const n of tree.values()) if (n.kind === "file") files++;
  return files;
}

/** A conflicted-copy name no tree holds yet: the name, then "name 2", "name 3"… before the extension. */
function freeName(name: string, taken: Set<string>): string {
  let out = name;
  for (let n = 2; taken.has(out); n++) {
    const base = nameOf(name);
    const dot = base.lastIndexOf(".");
    const [stem, ext] = dot > 0 ? [base.slice(0, dot), base.slice(dot)] : [base, ""];
    const parent = parentOf(name);
    out = `${parent ? `${parent}/` : ""}${stem} ${n}${ext}`;
  }
  taken.add(out);
  return out;
}

/**
 * What the planner must not see: paths the caller does not know (filtered,
 * unreadable) and local files still being written, with everything under
 * them, on all three trees. A hidden path is never deleted nor replaced on
 * either side, and a folder that holds one stays.
 */
function hiddenPaths(input: PlanInput) {
  const unstable = new Set<string>();
  for (const [p, n] of input.local as Tree<LocalNode>) if (n.unstable) unstable.add(p);
  const memo = new Map<string, boolean>();
  const isHidden = (p: string): boolean => {
    const known = memo.get(p);
    if (known !== undefined) return known;
    const parent = parentOf(p);
    const h = unstable.has(p) || (input.unknown?.(p) ?? false) || (parent !== "" && isHidden(parent));
    memo.set(p, h);
    return h;
  };
  const hiddenAt = { local: [] as string[], remote: [] as string[] };
  for (const p of input.local.keys()) if (isHidden(p)) hiddenAt.local.push(p);
  for (const p of input.remote.keys()) if (isHidden(p)) hiddenAt.remote.push(p);
  for (const p of input.synced.keys()) if (isHidden(p)) hiddenAt.local.push(p), hiddenAt.remote.push(p);
  hiddenAt.local.sort();
  hiddenAt.remote.sort();
  return {
    has: isHidden,
    /** Some hidden path lies under folder: the first path not below folder + "/" in sort order says. */
    under(side: "local" | "remote", folder: string): boolean {
      const list = hiddenAt[side];
      const i = lowerBound(list, `${folder}/`);
      return i < list.length && list[i]!.startsWith(`${folder}/`);
    },
  };
}

function visible<N>(tree: Tree<N & SyncNode>, hidden: { has(p: string): boolean }): Map<string, N & SyncNode> {
  const out = new Map<string, N & SyncNode>();
  for (const [p, n] of tree) if (!hidden.has(p)) out.set(p, n);
  return out;
}

export type { Plan };
