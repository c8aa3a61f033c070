import { ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import { ChangeOp, type Change } from "../../gen/drive/v1/feed_pb.js";
import { ContentHashKind, EntryKind, type FileInfo } from "../../gen/drive/v1/types_pb.js";
import { checkRemotePath } from "../../shared/rules/remote-path.js";
import { hasReason } from "../errors.js";
import type { DriveClient } from "../rpc/drive-client.js";
import { listRemote, remotePrefix } from "../tree/remote-list.js";
import { microsOf } from "../tree/tree-attrs.js";
import { parentOf, RemoteView, sameNode } from "./remote-view.js";
import type { NodeKind, RefreshRemote, RemoteNode, SyncState, TreeStep } from "./types.js";

/**
 * Brings Remote up to the server (types.ts, RefreshRemote): the feed from
 * the state's cursor, a page at a time, each page's changes and the cursor
 * after it in one transaction; or, with no cursor or on CURSOR_RESET, a
 * fresh listing that replaces the tree.
 *
 * The feed has one entry per path: a folder's move is a move of its entry
 * (when it has one) and one of each path under it, in path order. So each
 * change moves, sets or removes its own path only, and each path keeps its
 * id. Folders only implied by paths under them come and go with those
 * paths. A path the server names that is not a valid path is never taken.
 */
export const refreshRemote: RefreshRemote = async (client, state, remote, signal) => {
  if (!state.cursor) return { changed: await relist(client, state, remote, signal), reset: false };
  try {
    return { changed: await readFeed(client, state, remote, signal), reset: false };
  } catch (err) {
    if (!hasReason(err, ErrorReason.CURSOR_RESET)) throw err;
    return { changed: await relist(client, state, remote, signal), reset: true };
  }
};

async function relist(client: DriveClient, state: SyncState, remote: string, signal: AbortSignal): Promise<boolean> {
  const listing = await listRemote(client, remote, signal);
  const found = new Map<string, { kind: NodeKind; info: FileInfo | null }>();
  for (const e of listing.entries) if (!checkRemotePath(e.path)) found.set(e.path, { kind: e.kind, info: e.info });
  for (const p of [...found.keys()]) {
    for (let a = parentOf(p); a !== "" && !found.has(a); a = parentOf(a)) found.set(a, { kind: "folder", info: null });
  }
  // Ids: what Remote had at the path, else what Synced has there, else new; never one twice.
  const ids = new Map<string, string>();
  const taken = new Set<string>();
  for (const tree of [state.remote, state.synced]) {
    for (const [p, f] of found) {
      const had = tree.get(p);
      if (!ids.has(p) && had && had.kind === f.kind && !taken.has(had.id)) {
        ids.set(p, had.id);
        taken.add(had.id);
      }
    }
  }
  const next = new Map<string, RemoteNode>();
  for (const [p, f] of found) next.set(p, nodeOf(f.info, f.kind, ids.get(p) ?? state.newId()));
  const changed = next.size !== state.remote.size || [...next].some(([p, n]) => !sameOrNone(state.remote.get(p), n));
  await state.editRemote([...next].map(([path, node]) => ({ type: "set", path, node })), listing.cursor, { replace: true });
  return changed;
}

async function readFeed(client: DriveClient, state: SyncState, remote: string, signal: AbortSignal): Promise<boolean> {
  const view = new RemoteView(state);
  const apply = new FeedApplier(view, state, remote);
  let cursor = state.cursor;
  let changed = false;
  for (;;) {
    const page = await client.feed.listChanges({ cursor, prefix: remotePrefix(remote), limit: 1000 }, { signal });
    for (const c of page.changes) apply.change(c);
    const steps = view.take();
    if (steps.length > 0 || page.cursor !== cursor) await state.editRemote(steps, page.cursor);
    changed ||= steps.length > 0;
    cursor = page.cursor;
    if (!page.hasMore) return changed;
  }
}

/** The steps a run of feed changes (one page) makes of state.remote, not yet written. */
export function stepsOfChanges(state: SyncState, remote: string, changes: readonly Change[]): TreeStep<RemoteNode>[] {
  const view = new RemoteView(state);
  const apply = new FeedApplier(view, state, remote);
  for (const c of changes) apply.change(c);
  return view.take();
}

/** Turns feed changes into steps on the view. */
class FeedApplier {
  constructor(
    private readonly view: RemoteView,
    private readonly state: SyncState,
    private readonly remote: string,
  ) {}

  change(c: Change): void {
    const info = c.file;
    if (!info) return;
    const kind: NodeKind = info.kind === EntryKind.FOLDER ? "folder" : "file";
    const to = this.rel(info.path);
    if (c.op === ChangeOp.PUT || c.op === ChangeOp.ATTRS) {
      if (to !== null) this.put(to, info, kind);
    } else if (c.op === ChangeOp.DELETE) {
      if (to !== null) this.delete(to);
    } else if (c.op === ChangeOp.MOVE) {
      // Into the folder from outside is a put; out of it, a delete.
      const from = this.rel(c.fromPath);
      if (from !== null && to !== null) this.move(from, to, info, kind);
      else if (from !== null) this.delete(from);
      else if (to !== null) this.put(to, info, kind);
    }
  }

  /** The path relative to the remote folder; null outside it, for the folder itself, and for a path no valid tree holds. */
  private rel(full: string): string | null {
    const prefix = remotePrefix(this.remote);
    if (!full.startsWith(prefix) || full.length === prefix.length) return null;
    const p = full.slice(prefix.length);
    return checkRemotePath(p) === null ? p : null;
  }

  private put(path: string, info: FileInfo, kind: NodeKind): void {
    const cur = this.view.get(path);
    const id = cur && cur.kind === kind ? cur.id : this.freshId(path, kind, cur);
    this.view.set(path, nodeOf(info, kind, id));
    this.ensureParents(path);
  }

  /** A folder entry deleted with paths still under it stays, implied. */
  private delete(path: string): void {
    const cur = this.view.get(path);
    if (!cur) return;
    if (cur.kind === "folder" && this.view.kids(path) > 0) {
      this.view.set(path, nodeOf(null, "folder", cur.id));
      return;
    }
    this.view.remove(path);
    this.prune(path);
  }

  private move(from: string, to: string, info: FileInfo, kind: NodeKind): void {
    const cur = this.view.get(from);
    if (!cur || cur.kind !== kind) {
      this.put(to, info, kind);
      if (cur) this.delete(from);
      return;
    }
    const there = this.view.get(to);
    if (there) this.view.remove(to); // the server never moves onto a live path; a stale tree may have one
    if (cur.kind === "folder" && this.view.kids(from) > 0) {
      // The entry moves first, the paths under it after: until they have, what is left is an implied folder.
      this.view.set(from, nodeOf(null, "folder", this.freshId(from, "folder", undefined)));
    } else {
      this.view.remove(from);
    }
    this.view.set(to, nodeOf(info, kind, cur.id));
    this.ensureParents(to);
    this.prune(from);
  }

  /** Every folder the path passes through is a node: implied ones (revision 0) made as needed. */
  private ensureParents(path: string): void {
    for (let a = parentOf(path); a !== ""; a = parentOf(a)) {
      if (this.view.get(a)) return;
      this.view.set(a, nodeOf(null, "folder", this.freshId(a, "folder", undefined)));
    }
  }

  /** Implied folders that nothing is under any more go, up the tree. */
  private prune(path: string): void {
    for (let a = parentOf(path); a !== ""; a = parentOf(a)) {
      const n = this.view.get(a);
      if (!n || n.kind !== "folder" || n.revision !== 0 || this.view.kids(a) > 0) return;
      this.view.remove(a);
    }
  }

  /** For a path new to Remote: Synced's id there when the kind agrees and no node holds it (an upload's own echo), else a new one. */
  private freshId(path: string, kind: NodeKind, replacing: RemoteNode | undefined): string {
    const s = this.state.synced.get(path);
    if (s && s.kind === kind && (replacing?.id === s.id || !this.view.idTaken(s.id))) return s.id;
    return this.state.newId();
  }
}

/** A Remote node from the server's FileInfo; null info: a folder only implied by paths under it. */
function nodeOf(info: FileInfo | null, kind: NodeKind, id: string): RemoteNode {
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

function sameOrNone(a: RemoteNode | undefined, b: RemoteNode): boolean {
  return a !== undefined && sameNode(a, b);
}
