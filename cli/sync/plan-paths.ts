import { depthOf, sameContent, sameNode, type Busy, type SideTree } from "./plan-tree.js";
import type { LocalNode, OpWhy, Plan, RemoteNode, SyncedNode, SyncNode, SyncOp, Tree } from "./types.js";

export interface PathContext {
  synced: Tree<SyncedNode>;
  /** Synced's ids, to the path each is at. */
  syncedIds: ReadonlyMap<string, string>;
  local: SideTree<LocalNode>;
  remote: SideTree<RemoteNode>;
  busy: Busy;
  ops: SyncOp[];
  notes: Plan["notes"];
  /** A free conflicted-copy name for path. */
  copyName: (path: string) => string;
  /** Some path under p that the planner does not see on this side (unknown): p's folder stays. */
  hiddenUnder: (side: "local" | "remote", p: string) => boolean;
}

/**
 * The three-way merge, path by path, of everything no move holds busy. A
 * side changed a path when it differs from Synced; a change on one side is
 * made on the other; the same change on both is recorded. When both changed
 * it differently nothing is lost: an edit beats a delete, and when both
 * hold content the local one steps aside as a conflicted copy (which then
 * syncs as a new file) and the remote one takes the path.
 */
export function planPaths(cx: PathContext): void {
  const all = new Set<string>([...cx.synced.keys(), ...cx.local.nodes.keys(), ...cx.remote.nodes.keys()]);
  for (const p of [...all].sort()) {
    if (cx.busy.has(p)) continue;
    const s = cx.synced.get(p);
    const l = cx.local.get(p);
    const r = cx.remote.get(p);
    const localChanged = !sameNode(s, l);
    const remoteChanged = !sameNode(s, r);
    if (!localChanged && !remoteChanged) continue;
    if (sameNode(l, r)) {
      if (l) cx.ops.push({ type: "record", path: p, node: { ...strip(l), id: idFor(cx, p, l) }, why: "same_change" });
      else cx.ops.push({ type: "forget", path: p, why: "same_change" });
    } else if (!remoteChanged) toRemote(cx, p, s, l!, r);
    else if (!localChanged) toLocal(cx, p, l, r!);
    else both(cx, p, s, l, r);
  }
  settleFolderDeletes(cx);
}

/** Only the local side changed p (l undefined: deleted). */
function toRemote(cx: PathContext, p: string, s: SyncedNode | undefined, l: LocalNode | undefined, r: RemoteNode | undefined): void {
  if (!l) {
    cx.ops.push({ type: "remote_delete", path: p, kind: r!.kind, baseRevision: r!.revision, why: "local_delete" });
  } else if (!r) {
    create(cx, p, l, 0, "local_new");
  } else if (l.kind !== r.kind) {
    // A file became a folder or the other way: the old one goes first, the new one comes next round.
    cx.ops.push({ type: "remote_delete", path: p, kind: r.kind, baseRevision: r.revision, why: "local_edit" });
  } else if (l.kind === "file") {
    if (sameContent(l, r)) cx.ops.push({ type: "remote_attrs", path: p, id: idFor(cx, p, l), local: l, baseRevision: r.revision, why: "local_attrs" });
    else cx.ops.push({ type: "upload", path: p, id: idFor(cx, p, l), local: l, baseRevision: r.revision, why: s ? "local_edit" : "local_new" });
  }
}

/** Only the remote side changed p (r undefined: deleted). */
function toLocal(cx: PathContext, p: string, l: LocalNode | undefined, r: RemoteNode | undefined): void {
  if (!r) {
    cx.ops.push({ type: "local_delete", path: p, local: l!, why: "remote_delete" });
  } else if (!l) {
    fetch(cx, p, r, null, "remote_new");
  } else if (l.kind !== r.kind) {
    cx.ops.push({ type: "local_delete", path: p, local: l, why: "remote_edit" });
  } else if (l.kind === "file") {
    if (sameContent(l, r)) cx.ops.push({ type: "local_attrs", path: p, local: l, remote: remoteAs(cx, p, r), why: "remote_attrs" });
    else cx.ops.push({ type: "download", path: p, remote: remoteAs(cx, p, r), replaces: l, why: "remote_edit" });
  }
}

/** Both sides changed p, differently. */
function both(cx: PathContext, p: string, s: SyncedNode | undefined, l: LocalNode | undefined, r: RemoteNode | undefined): void {
  if (l && r && sameContent(l, r)) {
    // The same content with other attributes on each side: the remote's win; no content is at stake.
    if (l.kind === "file") cx.ops.push({ type: "local_attrs", path: p, local: l, remote: remoteAs(cx, p, r), why: "remote_attrs" });
    return;
  }
  if (!l) {
    fetch(cx, p, r!, null, "edit_beats_delete");
    note(cx, p, "edit_beats_delete", `${p} was deleted here and changed on the server: the server's version is kept`);
  } else if (!r) {
    create(cx, p, l, 0, "edit_beats_delete");
    note(cx, p, "edit_beats_delete", `${p} was deleted on the server and changed here: this version is kept`);
  } else if (s && sameContent(s, l)) {
    // Only the server changed the content (here only the mode or mtime, or nothing the server sees): its content wins.
    toLocal(cx, p, l, r);
  } else if (s && sameContent(s, r)) {
    toRemote(cx, p, s, l, r);
  } else {
    conflictCopy(cx, p, l, s);
  }
}

function create(cx: PathContext, p: string, l: LocalNode, baseRevision: number, why: OpWhy): void {
  if (cx.remote.fileAbove(p)) return; // a file on the server holds a folder of p's path: it goes (or is copied aside) first
  if (l.kind === "folder") cx.ops.push({ type: "remote_mkdir", path: p, id: idFor(cx, p, l), why });
  else cx.ops.push({ type: "upload", path: p, id: idFor(cx, p, l), local: l, baseRevision, why });
}

function fetch(cx: PathContext, p: string, r: RemoteNode, replaces: LocalNode | null, why: OpWhy): void {
  if (cx.local.fileAbove(p)) return;
  // A folder the server has only because paths lie under it comes with them (downloads make their folders); alone it would outlive them.
  if (r.kind === "folder" && r.revision === 0) return;
  if (r.kind === "folder") cx.ops.push({ type: "local_mkdir", path: p, remote: remoteAs(cx, p, r), why });
  else cx.ops.push({ type: "download", path: p, remote: remoteAs(cx, p, r), replaces, why });
}

function conflictCopy(cx: PathContext, p: string, l: LocalNode, s: SyncedNode | undefined): void {
  const to = cx.copyName(p);
  cx.ops.push({ type: "conflict_copy", path: p, to, local: l, ...(s ? { synced: s } : {}), why: "conflict" });
  note(cx, p, "conflict", `${p} changed here and on the server: this version is kept as ${to}`);
}

/**
 * A folder's delete stands only when everything under it goes too (and
 * nothing unseen is in it): a folder deleted on one side while files were
 * added to it on the other keeps them. Deepest first, so a kept folder
 * keeps its ancestors. A folder that is kept where the other side has a
 * file (a kind change) steps aside as a conflicted copy, or it would hold
 * the path forever.
 */
function settleFolderDeletes(cx: PathContext): void {
  const gone = { local: new Set<string>(), remote: new Set<string>() };
  for (const op of cx.ops) {
    if (op.type === "local_delete") gone.local.add(op.path);
    if (op.type === "remote_delete") gone.remote.add(op.path);
  }
  type FolderDelete = { op: Extract<SyncOp, { type: "local_delete" | "remote_delete" }>; i: number };
  const folders: FolderDelete[] = [];
  cx.ops.forEach((op, i) => {
    if ((op.type === "local_delete" && op.local.kind === "folder") || (op.type === "remote_delete" && op.kind === "folder")) folders.push({ op, i });
  });
  folders.sort((a, b) => depthOf(b.op.path) - depthOf(a.op.path));
  const replaced = new Map<number, SyncOp | null>();
  for (const { op, i } of folders) {
    const side = op.type === "local_delete" ? "local" : "remote";
    const tree = side === "local" ? cx.local : cx.remote;
    const stays = cx.hiddenUnder(side, op.path) || tree.under(op.path).some((q) => !gone[side].has(q));
    if (!stays) continue;
    gone[side].delete(op.path);
    const l = cx.local.get(op.path);
    const r = cx.remote.get(op.path);
    const kindClash = side === "local" ? r?.kind === "file" : l?.kind === "file";
    replaced.set(i, kindClash && l ? copyOp(cx, op.path, l) : null);
  }
  if (replaced.size === 0) return;
  const kept: SyncOp[] = [];
  cx.ops.forEach((op, i) => {
    if (!replaced.has(i)) kept.push(op);
    else if (replaced.get(i)) kept.push(replaced.get(i)!);
  });
  cx.ops.splice(0, cx.ops.length, ...kept);
}

function copyOp(cx: PathContext, p: string, l: LocalNode): SyncOp {
  const to = cx.copyName(p);
  note(cx, p, "conflict", `${p} is a folder on one side and a file on the other: this version is kept as ${to}`);
  const s = cx.synced.get(p);
  return { type: "conflict_copy", path: p, to, local: l, ...(s ? { synced: s } : {}), why: "conflict" };
}

function note(cx: PathContext, path: string, why: OpWhy, message: string): void {
  cx.notes.push({ path, why, message });
}

/**
 * The id Synced gets for a node at p, whichever side it comes from: the id
 * Synced has at p when the kinds agree (the node there is replaced, not
 * new), else the node's own, unless Synced has that id elsewhere (a move
 * that could not be made): ids stay unique in Synced.
 */
function idFor(cx: PathContext, p: string, n: SyncNode): string {
  const s = cx.synced.get(p);
  if (s && s.kind === n.kind) return s.id;
  const at = cx.syncedIds.get(n.id);
  return at === undefined || at === p ? n.id : `${n.id}~${p}`;
}

/** The remote node as Synced will record it, under the id idFor gives. */
function remoteAs(cx: PathContext, p: string, r: RemoteNode): RemoteNode {
  const id = idFor(cx, p, r);
  return id === r.id ? r : { ...r, id };
}

function strip(l: LocalNode): SyncedNode {
  const { unstable: _, ...rest } = l;
  return rest;
}
