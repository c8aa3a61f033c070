import { ChangeOp, type Change } from "../../gen/drive/v1/feed_pb.js";
import { EntryKind, type FileInfo } from "../../gen/drive/v1/types_pb.js";
import { checkRemotePath } from "../../shared/rules/remote-path.js";
import { remotePrefix } from "../tree/remote-list.js";
import { nodeOf, parentOf, RemoteView } from "./remote-view.js";
import type { NodeKind, RemoteNode, SyncState } from "./types.js";

/**
 * One refresh's reading of the feed (remote-tree.ts), a page at a time:
 * each page's changes become steps, written with the cursor after them.
 *
 * The feed has one entry per path: a folder's move is a move of its entry
 * (when it has one) and one of each path under it, in path order. So each
 * change moves, sets or removes its own path only, and each path keeps its
 * id. Folders only implied by paths under them come and go with those
 * paths; once the feed is read, an implied folder made by moves out of one
 * implied folder that is now gone takes its id (finish): a rename of a
 * folder with no entry is then a rename of Remote's folder too.
 */
export class FeedSteps {
  private readonly view: RemoteView;
  private readonly apply: FeedApplier;

  constructor(private readonly state: SyncState, remote: string) {
    this.view = new RemoteView(state);
    this.apply = new FeedApplier(this.view, state, remote);
  }

  /** Applies a page of changes and writes it with its cursor; true when Remote changed. */
  async page(changes: readonly Change[], cursor: string): Promise<boolean> {
    for (const c of changes) this.apply.change(c);
    const steps = this.view.take();
    if (steps.length > 0 || cursor !== this.state.cursor) await this.state.editRemote(steps, cursor);
    return steps.length > 0;
  }

  /** Gives implied folders made by a folder's rename the id of the folder they replace; true when Remote changed. */
  async finish(): Promise<boolean> {
    for (const [path, id] of this.apply.madeImplied) {
      const n = this.view.get(path);
      if (!n || n.id !== id || n.revision !== 0) continue;
      const from = this.apply.movedInFrom.get(path);
      const gone = from && from !== MANY && !this.view.get(from) ? this.apply.goneImplied.get(from) : undefined;
      // Else Synced's folder there, whose id a folder still in place held when this one was made (the echo of sync's own move).
      const s = this.state.synced.get(path);
      const want = gone ?? (s?.kind === "folder" ? s.id : undefined);
      if (want && want !== id && !this.view.idTaken(want)) this.view.set(path, { ...n, id: want });
    }
    const steps = this.view.take();
    if (steps.length > 0) await this.state.editRemote(steps, this.state.cursor);
    return steps.length > 0;
  }
}

/** movedInFrom's mark for a folder that paths came into from more than one folder: no rename. */
const MANY = "\u0000many";

/** Turns feed changes into steps on the view. */
class FeedApplier {
  /** Implied folders this refresh made, with the id each got. */
  readonly madeImplied = new Map<string, string>();
  /** Implied folders this refresh removed, with the id each had. */
  readonly goneImplied = new Map<string, string>();
  /** For a folder moves went into: the one folder they came from, same names below it (or MANY). */
  readonly movedInFrom = new Map<string, string>();

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
      this.makeImplied(from);
    } else {
      this.view.remove(from);
    }
    this.view.set(to, nodeOf(info, kind, cur.id));
    this.noteRename(from, to);
    this.ensureParents(to);
    this.prune(from);
  }

  private makeImplied(path: string): void {
    const id = this.freshId(path, "folder", undefined);
    this.view.set(path, nodeOf(null, "folder", id));
    this.madeImplied.set(path, id);
  }

  /** a/b/x to c/b/x: c/b may be a/b renamed, and c may be a. Up while the names below agree. */
  private noteRename(from: string, to: string): void {
    for (let f = from, t = to; ; f = parentOf(f), t = parentOf(t)) {
      const pf = parentOf(f);
      const pt = parentOf(t);
      if (pf === "" || pt === "" || pf === pt || f.slice(pf.length) !== t.slice(pt.length)) return;
      const had = this.movedInFrom.get(pt);
      this.movedInFrom.set(pt, had === undefined || had === pf ? pf : MANY);
    }
  }

  /** Every folder the path passes through is a node: implied ones (revision 0) made as needed. */
  private ensureParents(path: string): void {
    for (let a = parentOf(path); a !== ""; a = parentOf(a)) {
      if (this.view.get(a)) return;
      this.makeImplied(a);
    }
  }

  /** Implied folders that nothing is under any more go, up the tree. */
  private prune(path: string): void {
    for (let a = parentOf(path); a !== ""; a = parentOf(a)) {
      const n = this.view.get(a);
      if (!n || n.kind !== "folder" || n.revision !== 0 || this.view.kids(a) > 0) return;
      this.view.remove(a);
      this.goneImplied.set(a, n.id);
    }
  }

  /** For a path new to Remote: Synced's id there when the kind agrees and no node holds it (an upload's own echo), else a new one. */
  private freshId(path: string, kind: NodeKind, replacing: RemoteNode | undefined): string {
    const s = this.state.synced.get(path);
    if (s && s.kind === kind && (replacing?.id === s.id || !this.view.idTaken(s.id))) return s.id;
    return this.state.newId();
  }
}

