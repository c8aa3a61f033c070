import type { LocalStat, RemoteNode, SyncedNode, SyncOp, TreeStep } from "./types.js";

/** What the executor learnt while carrying an operation out, for the record. */
export interface OpResult {
  /** The local entry's stat as the operation left it (after a write), or as it was read (before an upload). */
  stat?: LocalStat;
}

/**
 * How Synced changes once an operation has succeeded on both sides: the
 * one place that says it, for the executor and for the planner's model in
 * the property tests alike. Synced is only ever written through this.
 */
export function effectOf(op: SyncOp, result: OpResult = {}): TreeStep<SyncedNode>[] {
  switch (op.type) {
    case "upload":
    case "remote_attrs": {
      const { stat: _, unstable: __, ...node } = op.local;
      return [{ type: "set", path: op.path, node: { ...node, id: op.id, stat: result.stat ?? op.local.stat } }];
    }
    case "remote_mkdir":
      return [{ type: "set", path: op.path, node: { ...folderNode(op.id), ...(result.stat ? { stat: result.stat } : {}) } }];
    case "remote_delete":
    case "local_delete":
    case "forget":
      return [{ type: "remove", path: op.path }];
    case "remote_move":
    case "local_move":
      return [{ type: "move", from: op.from, to: op.to }];
    case "download":
    case "local_attrs":
      return [{ type: "set", path: op.path, node: fromRemote(op.remote, result.stat) }];
    case "local_mkdir":
      return [{ type: "set", path: op.path, node: { ...folderNode(op.remote.id), ...(result.stat ? { stat: result.stat } : {}) } }];
    case "conflict_copy": {
      // The copy is a new local file, not a rename: Synced forgets the inode. The path now reads as deleted here, and the other side's version wins it.
      if (!op.synced) return [];
      const { stat: _, ...node } = op.synced;
      return [{ type: "set", path: op.path, node }];
    }
    case "record":
      return [...(op.from !== undefined && op.from !== op.path ? [{ type: "move" as const, from: op.from, to: op.path }] : []), { type: "set", path: op.path, node: op.node }];
  }
}

function folderNode(id: string): SyncedNode {
  return { id, kind: "folder", hash: "", size: 0, mode: 0, mtimeUs: 0 };
}

function fromRemote(r: RemoteNode, stat: LocalStat | undefined): SyncedNode {
  const { revision: _, ...node } = r;
  return stat ? { ...node, stat } : node;
}

/** Applies steps to a tree in memory, as SyncState does on disk: the model both share. */
export function applySteps<N>(tree: Map<string, N>, steps: ReadonlyArray<TreeStep<N & SyncedNode> | TreeStep<N & RemoteNode>>): void {
  for (const s of steps) {
    if (s.type === "set") tree.set(s.path, s.node as N);
    else if (s.type === "remove") tree.delete(s.path);
    else {
      // No rename puts a folder inside itself or onto an ancestor.
      if (s.from === s.to || isUnder(s.to, s.from) || isUnder(s.from, s.to)) continue;
      for (const p of [...tree.keys()]) if (isUnder(p, s.to)) tree.delete(p);
      const moving = [...tree].filter(([p]) => isUnder(p, s.from));
      for (const [p] of moving) tree.delete(p);
      for (const [p, n] of moving) tree.set(s.to + p.slice(s.from.length), n);
    }
  }
}

/** p is root or lies under it. */
export function isUnder(p: string, root: string): boolean {
  return p === root || p.startsWith(root + "/");
}
