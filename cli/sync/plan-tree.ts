import type { SyncedNode, SyncNode, Tree } from "./types.js";

/**
 * One side's tree as the planner reads it: nodes by path, and by identity.
 * A node's identity is its Synced id when the side's id is one of Synced's
 * (the scan matched it by inode or content, or the feed kept it across a
 * move), or else Synced's id at the same path when the kinds agree and no
 * other node claims it: so a side that gave a node an id of its own (an
 * upload echoed back by the feed, a file replaced in place) still reads as
 * the node Synced has there. Any other node is new on its side.
 */
export class SideTree<N extends SyncNode> {
  readonly identOf = new Map<string, string>();
  readonly pathOf = new Map<string, string>();
  /** Paths in sorted order, for the children of a folder. */
  private sorted: string[] | null = null;

  constructor(
    readonly side: "local" | "remote",
    readonly nodes: Tree<N>,
    synced: Tree<SyncedNode>,
    syncedIds: ReadonlyMap<string, string>,
  ) {
    const pending: string[] = [];
    for (const [p, n] of nodes) {
      if (syncedIds.has(n.id) && !this.pathOf.has(n.id) && synced.get(syncedIds.get(n.id)!)?.kind === n.kind) this.claim(p, n.id);
      else pending.push(p);
    }
    for (const p of pending) {
      const s = synced.get(p);
      const n = nodes.get(p)!;
      if (s && s.kind === n.kind && !this.pathOf.has(s.id)) this.claim(p, s.id);
      else this.claim(p, `${side}:${p}`);
    }
  }

  private claim(path: string, ident: string): void {
    this.identOf.set(path, ident);
    this.pathOf.set(ident, path);
  }

  get(path: string): N | undefined {
    return this.nodes.get(path);
  }

  /** Every path strictly under folder p. */
  under(p: string): string[] {
    this.sorted ??= [...this.nodes.keys()].sort();
    const prefix = `${p}/`;
    const out: string[] = [];
    for (let i = lowerBound(this.sorted, prefix); i < this.sorted.length && this.sorted[i]!.startsWith(prefix); i++) out.push(this.sorted[i]!);
    return out;
  }

  /** A file at an ancestor of p: nothing can be made at p on this side until it goes. */
  fileAbove(p: string): boolean {
    for (let a = parentOf(p); a !== ""; a = parentOf(a)) if (this.nodes.get(a)?.kind === "file") return true;
    return false;
  }
}

/** The first index of a sorted list whose item is not below key: where the paths under a prefix begin. */
export function lowerBound(sorted: readonly string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function parentOf(p: string): string {
  const i = p.lastIndexOf("/");
  return i < 0 ? "" : p.slice(0, i);
}

export function nameOf(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}

export function joinPath(parent: string, name: string): string {
  return parent ? `${parent}/${name}` : name;
}

export function depthOf(p: string): number {
  let d = 0;
  for (let i = 0; i < p.length; i++) if (p.charCodeAt(i) === 47) d++;
  return d;
}

/** The same content: both absent, or the same kind and, for files, the same hash. */
export function sameContent(a: SyncNode | undefined, b: SyncNode | undefined): boolean {
  if (!a || !b) return !a && !b;
  return a.kind === b.kind && (a.kind === "folder" || a.hash === b.hash);
}

/** The same content and, for files, the same mode and mtime. */
export function sameNode(a: SyncNode | undefined, b: SyncNode | undefined): boolean {
  if (!sameContent(a, b)) return false;
  if (!a || !b || a.kind === "folder") return true;
  return a.mode === b.mode && a.mtimeUs === b.mtimeUs;
}

/**
 * Paths the planner leaves alone this round: the subtrees a move touches
 * (where it comes from and goes to, on either side), and their ancestors.
 * What lies in them is planned by path only once the move is done.
 */
export class Busy {
  private readonly roots = new Set<string>();
  private readonly above = new Set<string>();

  add(p: string): void {
    this.roots.add(p);
    for (let a = parentOf(p); a !== ""; a = parentOf(a)) this.above.add(a);
    this.above.add("");
  }

  /** p is in or above a busy subtree. */
  has(p: string): boolean {
    if (this.above.has(p)) return true;
    for (let a = p; ; a = parentOf(a)) {
      if (this.roots.has(a)) return true;
      if (a === "") return false;
    }
  }
}
