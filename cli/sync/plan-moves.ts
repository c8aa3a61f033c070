import { Busy, depthOf, joinPath, nameOf, parentOf, sameNode, type SideTree } from "./plan-tree.js";
import type { LocalNode, RemoteNode, SyncedNode, SyncOp, Tree } from "./types.js";

export interface MoveContext {
  synced: Tree<SyncedNode>;
  local: SideTree<LocalNode>;
  remote: SideTree<RemoteNode>;
  busy: Busy;
  ops: SyncOp[];
}

/**
 * Renames and moves, by identity: a Synced node that one side has at
 * another path moved there, unless its folder's move explains it. The move
 * is made on the other side, wherever that side has the node now (an edit
 * there follows it), into the folder that side has in place of the
 * destination's folder. When both moved it, to one place it is recorded,
 * to two the remote's place wins. A move that cannot be made (something is
 * in the way, the node is gone on the other side) is left to the path-by-path
 * merge, which is always safe: it reads as a delete and a create.
 *
 * One round makes only moves whose subtrees do not meet; the others wait,
 * and their paths are busy, so the path merge does not see them half-done.
 */
export function planMoves(cx: MoveContext): void {
  const { synced, local, remote } = cx;
  // Only nodes some side has elsewhere can have moved: most trees have few, and only they are sorted.
  const moved: Array<{ p: string; depth: number }> = [];
  for (const [p, s] of synced) {
    const lp = local.pathOf.get(s.id);
    const rp = remote.pathOf.get(s.id);
    if ((lp !== undefined && lp !== p) || (rp !== undefined && rp !== p)) moved.push({ p, depth: depthOf(p) });
  }
  moved.sort((a, b) => a.depth - b.depth || (a.p < b.p ? -1 : a.p > b.p ? 1 : 0));
  for (const { p } of moved) {
    const s = synced.get(p)!;
    const lp = local.pathOf.get(s.id);
    const rp = remote.pathOf.get(s.id);
    const lTop = lp !== undefined && lp !== p && !explained(cx, local, p, lp);
    const rTop = rp !== undefined && rp !== p && !explained(cx, remote, p, rp);
    if (!lTop && !rTop) continue;
    if (lp === undefined || rp === undefined) continue; // gone on one side: the path merge keeps what was moved
    if (lTop && rTop) bothMoved(cx, p, s, lp, rp);
    else if (lTop) propagate(cx, p, lp, local, remote, rp);
    else propagate(cx, p, rp, remote, local, lp);
  }
}

/** The node's move on this side follows from its folder's: the folder moved, and the node kept its name in it. */
function explained<N extends SyncedNode | LocalNode | RemoteNode>(cx: MoveContext, side: SideTree<N>, p: string, now: string): boolean {
  const parent = parentOf(p);
  if (parent === "" || nameOf(p) !== nameOf(now)) return false;
  const sp = cx.synced.get(parent);
  return sp !== undefined && side.pathOf.get(sp.id) === parentOf(now);
}

function bothMoved(cx: MoveContext, p: string, s: SyncedNode, lp: string, rp: string): void {
  const l = cx.local.get(lp)!;
  const r = cx.remote.get(rp)!;
  if (lp === rp) {
    // A file that became the inside of a folder of its own name: the path merge records both.
    if (lp.startsWith(`${p}/`) || p.startsWith(`${lp}/`)) return;
    if (!claim(cx, [p, lp])) return;
    // A file's content is recorded only when both sides agree on it; otherwise the old one, with no stat, so the next scan reads the file and the path merge sees both edits.
    const node: SyncedNode =
      l.kind === "folder" || sameNode(l, r) ? { ...strip(l), id: s.id } : { ...withoutStat(s) };
    cx.ops.push({ type: "record", path: lp, from: p, node, why: "same_change" });
    return;
  }
  // Two places: the remote's wins, and the local copy moves there.
  if (cx.local.get(rp) !== undefined || rp.startsWith(`${lp}/`) || l.unstable) return;
  if (cx.local.fileAbove(rp)) return;
  if (!claim(cx, [p, lp, rp])) return;
  cx.ops.push({ type: "local_move", from: lp, to: rp, local: l, why: "remote_move" });
}

function propagate(
  cx: MoveContext,
  p: string,
  xp: string,
  x: SideTree<LocalNode> | SideTree<RemoteNode>,
  y: SideTree<LocalNode> | SideTree<RemoteNode>,
  yp: string,
): void {
  // Into the folder y has in place of x's destination folder (y may have renamed it).
  const xParent = parentOf(xp);
  let yParent = xParent;
  if (xParent !== "") {
    const k = x.identOf.get(xParent);
    const there = k === undefined ? undefined : y.pathOf.get(k);
    if (there !== undefined) yParent = there;
  }
  const dest = joinPath(yParent, nameOf(xp));
  if (dest === yp) return;
  if (dest.startsWith(`${yp}/`) || y.get(dest) !== undefined || y.fileAbove(dest)) return;
  const node = y.get(yp)!;
  if ("unstable" in node && node.unstable) return;
  if (!claim(cx, [p, xp, yp, dest])) return;
  const why = x.side === "local" ? "local_move" : "remote_move";
  if (y.side === "remote") {
    const r = node as RemoteNode;
    cx.ops.push({ type: "remote_move", from: yp, to: dest, kind: r.kind, baseRevision: r.kind === "file" ? r.revision : 0, why });
  } else {
    cx.ops.push({ type: "local_move", from: yp, to: dest, local: node as LocalNode, why });
  }
}

/** Marks the paths busy; false (and busy all the same, so the path merge waits) when they meet a move already planned. */
function claim(cx: MoveContext, paths: string[]): boolean {
  const free = paths.every((q) => !cx.busy.has(q));
  for (const q of paths) cx.busy.add(q);
  return free;
}

function strip(n: LocalNode): SyncedNode {
  const { unstable: _, ...rest } = n;
  return rest;
}

function withoutStat(s: SyncedNode): SyncedNode {
  const { stat: _, ...rest } = s;
  return rest;
}
