/**
 * A model of the world two-way sync lives in, for the planner's property
 * test: a local disk (entries with inodes and change counters), a server
 * (entries with revisions, folders implied by paths under them, the
 * server's refusals), and the executor's checks, all in memory. Each
 * operation does what execute.ts does: it checks what the plan saw, and
 * either changes the world and then Synced (through effectOf, the same
 * code the executor records with), or does nothing.
 */
import { applySteps, effectOf, isUnder } from "../../cli/sync/plan-effects.js";
import type { LocalNode, LocalStat, NodeKind, RemoteNode, SyncedNode, SyncOp } from "../../cli/sync/types.js";

export interface DiskEntry {
  kind: NodeKind;
  hash: string;
  mode: number;
  mtimeUs: number;
  ino: bigint;
  /** ctime: bumped by every change to the entry. */
  ver: bigint;
}

export interface ServerEntry {
  kind: NodeKind;
  hash: string;
  mode: number;
  mtimeUs: number;
  revision: number;
  /** The id the remote tree keeps for this entry (the feed keeps it across moves). */
  id: string;
}

export class World {
  disk = new Map<string, DiskEntry>();
  server = new Map<string, ServerEntry>();
  synced = new Map<string, SyncedNode>();
  /** Last revision per server path, deletes included. */
  private revs = new Map<string, number>();
  private implied = new Map<string, string>();
  private nextIno = 1n;
  private nextVer = 1n;
  private nextId = 1;
  log: string[] = [];

  freshId(): string {
    return `m${this.nextId++}`;
  }
  ino(): bigint {
    return this.nextIno++;
  }
  ver(): bigint {
    return this.nextVer++;
  }

  // ---- the local disk ----

  stat(p: string): LocalStat | undefined {
    const e = this.disk.get(p);
    if (!e) return undefined;
    return { dev: 1n, ino: e.ino, size: e.kind === "file" ? e.hash.length : 0, mtimeNs: BigInt(e.mtimeUs) * 1000n, ctimeNs: e.ver, mode: e.mode, recordedNs: 0n };
  }

  /** mkdir -p of p's parents; false when a file is in the way. */
  mkdirParents(p: string): boolean {
    const parts = p.split("/");
    for (let i = 1; i < parts.length; i++) {
      const a = parts.slice(0, i).join("/");
      const e = this.disk.get(a);
      if (e?.kind === "file") return false;
      if (!e) this.disk.set(a, { kind: "folder", hash: "", mode: 0, mtimeUs: 0, ino: this.ino(), ver: this.ver() });
    }
    return true;
  }

  diskMove(from: string, to: string): void {
    const moving = [...this.disk].filter(([q]) => isUnder(q, from));
    for (const [q] of moving) this.disk.delete(q);
    for (const [q, e] of moving) this.disk.set(to + q.slice(from.length), { ...e, ver: this.ver() });
  }

  /** The scan: the disk as LocalNodes, with ids by inode, then path, then a unique hash (scan-local.ts's rules). */
  scan(): Map<string, LocalNode> {
    const byIno = new Map<bigint, [string, SyncedNode]>();
    for (const [p, s] of this.synced) if (s.stat) byIno.set(s.stat.ino, [p, s]);
    const taken = new Set<string>();
    const ids = new Map<string, string>();
    for (const [p, e] of this.disk) {
      const hit = byIno.get(e.ino);
      if (hit && hit[1].kind === e.kind && !taken.has(hit[1].id)) ids.set(p, hit[1].id), taken.add(hit[1].id);
    }
    for (const [p, e] of this.disk) {
      if (ids.has(p)) continue;
      const s = this.synced.get(p);
      if (s && s.kind === e.kind && !taken.has(s.id)) ids.set(p, s.id), taken.add(s.id);
    }
    const byHash = new Map<string, SyncedNode[]>();
    for (const [p, s] of this.synced) if (s.kind === "file" && !this.disk.has(p)) byHash.set(s.hash, [...(byHash.get(s.hash) ?? []), s]);
    for (const [p, e] of this.disk) {
      if (ids.has(p)) continue;
      const cands = e.kind === "file" ? byHash.get(e.hash) : undefined;
      if (cands?.length === 1 && !taken.has(cands[0]!.id)) ids.set(p, cands[0]!.id), taken.add(cands[0]!.id);
      else ids.set(p, this.freshId());
    }
    const out = new Map<string, LocalNode>();
    for (const [p, e] of this.disk) {
      out.set(p, { id: ids.get(p)!, kind: e.kind, hash: e.hash, size: e.kind === "file" ? e.hash.length : 0, mode: e.mode, mtimeUs: e.mtimeUs, stat: this.stat(p)! });
    }
    return out;
  }

  // ---- the server ----

  live(p: string): ServerEntry | undefined {
    return this.server.get(p);
  }

  private bump(p: string): number {
    const r = (this.revs.get(p) ?? 0) + 1;
    this.revs.set(p, r);
    return r;
  }

  serverPut(p: string, e: Omit<ServerEntry, "revision">): void {
    this.server.set(p, { ...e, revision: this.bump(p) });
  }

  serverDelete(p: string): void {
    this.server.delete(p);
    this.bump(p);
  }

  /** Why a put at p is refused: a file above it, or (for a file) paths under it. */
  putClash(p: string, kind: NodeKind): boolean {
    const parts = p.split("/");
    for (let i = 1; i < parts.length; i++) if (this.server.get(parts.slice(0, i).join("/"))?.kind === "file") return true;
    if (kind === "file") for (const q of this.server.keys()) if (q.startsWith(`${p}/`)) return true;
    return false;
  }

  serverMove(from: string, to: string): boolean {
    const moving = [...this.server].filter(([q]) => isUnder(q, from));
    if (moving.length === 0) return false;
    if ([...this.server.keys()].some((q) => isUnder(q, to))) return false;
    for (const [q] of moving) this.serverDelete(q);
    for (const [q, e] of moving) this.serverPut(to + q.slice(from.length), e);
    return true;
  }

  /** The remote tree as refreshRemote keeps it: entries with their ids, and folders implied by paths under them. */
  remoteTree(): Map<string, RemoteNode> {
    const out = new Map<string, RemoteNode>();
    for (const [p, e] of this.server) out.set(p, { id: e.id, kind: e.kind, hash: e.hash, size: e.kind === "file" ? e.hash.length : 0, mode: e.mode, mtimeUs: e.mtimeUs, revision: e.revision });
    const implied = new Map<string, string>();
    for (const p of this.server.keys()) {
      const parts = p.split("/");
      for (let i = 1; i < parts.length; i++) {
        const a = parts.slice(0, i).join("/");
        if (out.has(a)) continue;
        const s = this.synced.get(a);
        const id = s?.kind === "folder" ? s.id : (this.implied.get(a) ?? this.freshId());
        implied.set(a, id);
        out.set(a, { id, kind: "folder", hash: "", size: 0, mode: 0, mtimeUs: 0, revision: 0 });
      }
    }
    this.implied = implied;
    return out;
  }

  /** A new server path's id as the remote tree gives it: Synced's at that path when the kinds agree. */
  idForNew(p: string, kind: NodeKind): string {
    const s = this.synced.get(p);
    return s && s.kind === kind ? s.id : this.freshId();
  }

  // ---- the executor ----

  private localIs(p: string, want: LocalNode): boolean {
    const e = this.disk.get(p);
    return !!e && e.kind === want.kind && e.ino === want.stat.ino && (e.kind === "folder" || e.ver === want.stat.ctimeNs);
  }

  /** Carries out one operation: true when it was done (and recorded in Synced). */
  execute(op: SyncOp, opts: { crash?: boolean } = {}): boolean {
    this.crashing = opts.crash ?? false;
    // A conflicted copy's record only forgets a stat, so the executor makes it first: a crash after the rename never leaves the copy looking like a rename.
    if (op.type === "conflict_copy" && this.localIs(op.path, op.local)) this.record(op);
    const ok = this.run(op);
    this.log.push(`${ok ? "done" : "skip"}${this.crashing ? " (crashed before the record)" : ""} ${describe(op)}`);
    this.crashing = false;
    return ok;
  }

  private crashing = false;

  /** Records the op in Synced, unless the process "died" just after the world changed. */
  private record(op: SyncOp, stat?: LocalStat): true {
    if (!this.crashing) applySteps(this.synced, effectOf(op, stat ? { stat } : {}));
    return true;
  }

  private run(op: SyncOp): boolean {
    switch (op.type) {
      case "upload": {
        if (!this.localIs(op.path, op.local)) return false;
        const cur = this.live(op.path);
        if (cur?.kind === "file" && cur.hash === op.local.hash) return this.record(op, op.local.stat); // identical content is not a conflict
        if (op.baseRevision === 0 ? cur !== undefined : cur?.revision !== op.baseRevision) return false;
        if (this.putClash(op.path, "file")) return false;
        this.serverPut(op.path, { id: op.id, kind: "file", hash: op.local.hash, mode: op.local.mode, mtimeUs: op.local.mtimeUs });
        return this.record(op, op.local.stat);
      }
      case "remote_mkdir": {
        const cur = this.live(op.path);
        if (cur?.kind === "folder") return this.record(op);
        if (cur || this.putClash(op.path, "folder")) return false;
        this.serverPut(op.path, { id: op.id, kind: "folder", hash: "", mode: 0, mtimeUs: 0 });
        return this.record(op);
      }
      case "remote_attrs": {
        if (!this.localIs(op.path, op.local)) return false;
        const cur = this.live(op.path);
        if (cur?.kind !== "file" || cur.hash !== op.local.hash) return false;
        if (cur.revision === op.baseRevision) this.serverPut(op.path, { ...cur, mode: op.local.mode, mtimeUs: op.local.mtimeUs });
        return this.record(op, op.local.stat);
      }
      case "remote_delete": {
        // A folder goes only once what was under it went (the executor: every delete under it in the plan succeeded).
        if (op.kind === "folder" && [...this.server.keys()].some((q) => q.startsWith(`${op.path}/`))) return false;
        if (op.baseRevision === 0) return this.record(op);
        const cur = this.live(op.path);
        if (!cur || cur.revision !== op.baseRevision) return false;
        this.serverDelete(op.path);
        return this.record(op);
      }
      case "remote_move": {
        if (op.to === op.from || op.to.startsWith(`${op.from}/`)) return false;
        if (op.kind === "file" && this.live(op.from)?.revision !== op.baseRevision) return false;
        if (!this.serverMove(op.from, op.to)) return false;
        return this.record(op);
      }
      case "download": {
        const cur = this.live(op.path);
        if (cur?.kind !== "file" || cur.hash !== op.remote.hash) return false;
        if (op.replaces ? !this.localIs(op.path, op.replaces) : this.disk.has(op.path)) return false;
        if (!this.mkdirParents(op.path)) return false;
        this.disk.set(op.path, { kind: "file", hash: cur.hash, mode: cur.mode, mtimeUs: cur.mtimeUs, ino: this.ino(), ver: this.ver() });
        return this.record(op, this.stat(op.path));
      }
      case "local_mkdir": {
        const e = this.disk.get(op.path);
        if (e?.kind === "file" || !this.mkdirParents(op.path)) return false;
        if (!e) this.disk.set(op.path, { kind: "folder", hash: "", mode: 0, mtimeUs: 0, ino: this.ino(), ver: this.ver() });
        return this.record(op, this.stat(op.path));
      }
      case "local_attrs": {
        if (!this.localIs(op.path, op.local)) return false;
        const e = this.disk.get(op.path)!;
        this.disk.set(op.path, { ...e, mode: op.remote.mode, mtimeUs: op.remote.mtimeUs, ver: this.ver() });
        return this.record(op, this.stat(op.path));
      }
      case "local_delete": {
        if (!this.localIs(op.path, op.local)) return false;
        if (op.local.kind === "folder" && [...this.disk.keys()].some((q) => q.startsWith(`${op.path}/`))) return false;
        this.disk.delete(op.path);
        return this.record(op);
      }
      case "local_move":
      case "conflict_copy": {
        const from = op.type === "local_move" ? op.from : op.path;
        if (!this.localIs(from, op.local) || this.disk.has(op.to) || op.to.startsWith(`${from}/`)) return false;
        if (!this.mkdirParents(op.to)) return false;
        this.diskMove(from, op.to);
        return this.record(op);
      }
      case "record":
      case "forget":
        return this.record(op);
    }
  }
}

export function describe(op: SyncOp): string {
  if (op.type === "remote_move" || op.type === "local_move") return `${op.type} ${op.from} -> ${op.to} (${op.why})`;
  if (op.type === "conflict_copy") return `${op.type} ${op.path} -> ${op.to}`;
  if (op.type === "record" && op.from !== undefined) return `record ${op.from} -> ${op.path}`;
  return `${op.type} ${op.path} (${op.why})`;
}
