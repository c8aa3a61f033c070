import { ContentHashKind, type FileInfo } from "../../gen/drive/v1/types_pb.js";
import { microsOf } from "../tree/tree-attrs.js";
import type { NodeKind, RemoteNode, SyncState, TreeStep } from "./types.js";

/**
 * Remote as a refresh changes it, before the change is written: the state's
 * tree with the steps so far on top, how many nodes each folder holds (to
 * tell when an implied folder goes) and which path holds each id (so none
 * is given twice). The counts and ids are built on first need, once per
 * refresh, and kept up to date by set and remove.
 */
export class RemoteView {
  private overlay = new Map<string, RemoteNode | null>();
  private steps: TreeStep<RemoteNode>[] = [];
  private index: { kids: Map<string, number>; ids: Map<string, string> } | undefined;

  constructor(private readonly state: SyncState) {}

  get(path: string): RemoteNode | undefined {
    const o = this.overlay.get(path);
    return o === null ? undefined : (o ?? this.state.remote.get(path));
  }

  /** Nodes directly in the folder at path. */
  kids(path: string): number {
    return this.built().kids.get(path) ?? 0;
  }

  idTaken(id: string): boolean {
    return this.built().ids.has(id);
  }

  set(path: string, node: RemoteNode): void {
    const prev = this.get(path);
    if (prev && sameNode(prev, node)) return;
    const { kids, ids } = this.built();
    if (!prev) bump(kids, parentOf(path), 1);
    else if (ids.get(prev.id) === path) ids.delete(prev.id);
    ids.set(node.id, path);
    this.overlay.set(path, node);
    this.steps.push({ type: "set", path, node });
  }

  remove(path: string): void {
    const prev = this.get(path);
    if (!prev) return;
    const { kids, ids } = this.built();
    bump(kids, parentOf(path), -1);
    if (ids.get(prev.id) === path) ids.delete(prev.id);
    this.overlay.set(path, null);
    this.steps.push({ type: "remove", path });
  }

  /** The steps so far, for one transaction; the state holds them once it is written. */
  take(): TreeStep<RemoteNode>[] {
    const out = this.steps;
    this.steps = [];
    this.overlay = new Map();
    return out;
  }

  private built(): { kids: Map<string, number>; ids: Map<string, string> } {
    if (this.index) return this.index;
    const kids = new Map<string, number>();
    const ids = new Map<string, string>();
    const add = (p: string, n: RemoteNode) => {
      bump(kids, parentOf(p), 1);
      ids.set(n.id, p);
    };
    for (const [p, n] of this.state.remote) if (!this.overlay.has(p)) add(p, n);
    for (const [p, n] of this.overlay) if (n) add(p, n);
    return (this.index = { kids, ids });
  }
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}

function bump(m: Map<string, number>, k: string, by: number): void {
  const n = (m.get(k) ?? 0) + by;
  if (n > 0) m.set(k, n);
  else m.delete(k);
}

export function sameNode(a: RemoteNode, b: RemoteNode): boolean {
  return a.id === b.id && a.kind === b.kind && a.hash === b.hash && a.size === b.size && a.mode === b.mode && a.mtimeUs === b.mtimeUs && a.revision === b.revision;
}

/** A Remote node from the server's FileInfo; null info: a folder only implied by paths under it. */
export function nodeOf(info: FileInfo | null, kind: NodeKind, id: string): RemoteNode {
  const revision = info ? Number(info.revision) : 0;
  if (kind === "folder") return { id, kind, hash: "", size: 0, mode: 0, mtimeUs: 0, revision };
  const hex = Buffer.from(info!.contentHash).toString("hex");
  return {
    id,
    kind,
    hash: info!.contentHashKind === ContentHashKind.CHUNK_LIST ? `cl:${hex}` : hex,
    size: Number(info!.size),
    mode: info!.mode & 0o777,
    mtimeUs: Number(microsOf(info!.mtime) ?? 0n),
    revision,
  };
}

