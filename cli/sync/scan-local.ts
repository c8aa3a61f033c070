import { setImmediate as nextTurn } from "node:timers/promises";
import { isUnchanged } from "../local/unchanged.js";
import { walkAll } from "../local/walk.js";
import type { IndexEntry, LocalEntry } from "../local/types.js";
import { microsOfNs } from "../tree/tree-attrs.js";
import { runParallel } from "../transfer/run-parallel.js";
import { hashFile, hashSmallFile, SMALL_HASH_MAX, type HashedFile } from "./hash-file.js";
import { MARKER_NAME, type LocalNode, type LocalStat, type ScanLocal, type SyncedNode } from "./types.js";

/**
 * The Local tree of a root (types.ts, ScanLocal). The walk (cli/local/walk.ts)
 * decides what is there and what is skipped; a file whose stat Synced
 * recorded, by the rules of cli/local/unchanged.ts, keeps Synced's hash
 * unread; any other is hashed whole. Then ids, so a rename reads as one:
 * (a) the Synced node of the same inode and kind, and for a file the same
 * content; (b) the Synced node at the same path and kind; (c) for a file,
 * the one Synced file of the same content whose path is gone (a rename
 * that changed the inode: a copy to another disk, then a delete); (d) a
 * fresh id. No id goes to two nodes.
 */
export const scanLocal: ScanLocal = async (opts) => {
  const startNs = nowNs();
  const unknown = new Set<string>();
  const onSkip: NonNullable<typeof opts.onSkip> = (path, reason, detail) => {
    // The walk names a collision by its disk spelling; Synced knows the path by its NFC one.
    unknown.add(path).add(path.normalize("NFC"));
    opts.onSkip?.(path, reason, detail);
  };
  const entries = await walkAll(opts.root, { filter: opts.filter, signal: opts.signal, onSkip, onProgress: opts.onProgress });
  const root = opts.root.endsWith("/") ? opts.root : opts.root + "/";
  const byInode = new Map<string, [string, SyncedNode]>();
  for (const entry of opts.synced) if (entry[1].stat) byInode.set(inodeKey(entry[1].stat), entry);
  const settledBefore = nowNs() - BigInt(Math.round(opts.settleMs)) * 1_000_000n;

  const tree = new Map<string, LocalNode>();
  const toHash: Array<{ entry: LocalEntry; node: LocalNode }> = [];
  for (const e of entries) {
    if (isMarker(e.path)) continue;
    const stat = statOf(e, startNs);
    if (e.kind === "folder") {
      tree.set(e.path, { id: "", kind: "folder", hash: "", size: 0, mode: 0, mtimeUs: 0, stat });
      continue;
    }
    const hash = vouchedHash(e, opts.synced.get(e.path)) ?? vouchedHash(e, byInode.get(inodeKey(stat))?.[1]);
    const node = fileNode(hash ?? "", stat, settledBefore, false);
    tree.set(e.path, node); // in path order now, whatever order the hashes finish in
    if (hash === undefined) toHash.push({ entry: e, node });
  }
  let bytesHashed = 0;
  const hashed = (entry: LocalEntry, node: LocalNode, h: HashedFile) => {
    bytesHashed += h.bytes;
    delete node.unstable; // as the read found it, not the walk
    Object.assign(node, fileNode(h.hash, h.stat, settledBefore, h.changed));
  };
  const unreadable = (entry: LocalEntry, err: unknown) => {
    tree.delete(entry.path);
    onSkip(entry.path, "unreadable", (err as Error).message);
  };
  // Small files in this thread, yielding now and then; the rest through the thread pool, a few at once.
  const large: typeof toHash = [];
  let since = performance.now();
  for (const item of toHash) {
    if (item.entry.size > SMALL_HASH_MAX) {
      large.push(item);
      continue;
    }
    if (performance.now() - since > SLICE_MS) {
      await nextTurn();
      opts.signal.throwIfAborted();
      since = performance.now();
    }
    try {
      const h = hashSmallFile(root + (item.entry.diskPath ?? item.entry.path));
      if (h) hashed(item.entry, item.node, h);
      else large.push(item); // it grew since the walk
    } catch (err) {
      unreadable(item.entry, err);
    }
  }
  await runParallel(
    large,
    HASH_LANES,
    async ({ entry, node }, signal) => {
      try {
        hashed(entry, node, await hashFile(root + (entry.diskPath ?? entry.path), signal));
      } catch (err) {
        if (signal.aborted) throw err;
        unreadable(entry, err);
      }
    },
    opts.signal,
  );
  giveIds(tree, opts.synced, byInode, opts.newId);
  return { tree, unknown, bytesHashed };
};

/** Files hashed at once: enough to keep a disk's queue busy, few enough for two cores. */
const HASH_LANES = 4;
/** The longest stretch of synchronous reading before the event loop gets a turn (as the walk does). */
const SLICE_MS = 4;

function fileNode(hash: string, stat: LocalStat, settledBefore: bigint, changed: boolean): LocalNode {
  const node: LocalNode = { id: "", kind: "file", hash, size: stat.size, mode: stat.mode & 0o777, mtimeUs: Number(microsOfNs(stat.mtimeNs)), stat };
  if (changed || stat.mtimeNs > settledBefore || stat.ctimeNs > settledBefore) node.unstable = true;
  return node;
}

/** The marker, and the temporary file it is written through (guard.ts), are the root's own: never synced. */
function isMarker(path: string): boolean {
  return path === MARKER_NAME || path.startsWith(`${MARKER_NAME}.`);
}

function giveIds(tree: Map<string, LocalNode>, synced: ReadonlyMap<string, SyncedNode>, byInode: Map<string, [string, SyncedNode]>, newId: () => string): void {
  const claimed = new Set<string>();
  const give = (n: LocalNode, id: string) => {
    n.id = id;
    claimed.add(id);
  };
  // (a) By inode, where the content is Synced's too (or a folder). Hard links share an inode: the link at Synced's own path wins, else the first in path order.
  const byInodeMatch = () => {
    const byId = new Map<string, { path: string; node: LocalNode }>();
    for (const [p, n] of tree) {
      if (n.id) continue;
      const hit = byInode.get(inodeKey(n.stat));
      if (!hit || hit[1].kind !== n.kind || claimed.has(hit[1].id) || (n.kind === "file" && hit[1].hash !== n.hash)) continue;
      if (n.kind === "folder" && !folderMoved(p, hit[0])) continue;
      const had = byId.get(hit[1].id);
      if (!had || (p === hit[0] && had.path !== hit[0])) byId.set(hit[1].id, { path: p, node: n });
    }
    for (const [id, { node }] of byId) give(node, id);
  };
  /**
   * A folder elsewhere with a Synced folder's inode moved there only if
   * something of what Synced had in it came along (or it held nothing): a
   * new folder gets a deleted one's inode as readily as a new file does.
   */
  const folderMoved = (p: string, was: string): boolean => {
    if (p === was) return true;
    let held = false;
    for (const q of synced.keys()) if (q.startsWith(`${was}/`)) { held = true; break; }
    if (!held) return true;
    for (const [q, n] of tree) {
      if (!q.startsWith(`${p}/`)) continue;
      const hit = byInode.get(inodeKey(n.stat));
      if (hit && hit[0].startsWith(`${was}/`) && hit[1].kind === n.kind && (n.kind === "folder" || hit[1].hash === n.hash)) return true;
    }
    return false;
  };
  byInodeMatch();
  // (b) By path.
  for (const [p, n] of tree) {
    if (n.id) continue;
    const s = synced.get(p);
    if (s && s.kind === n.kind && !claimed.has(s.id)) give(n, s.id);
  }
  // (c) By content, only where one Synced file has it and its path is gone.
  let byHash: Map<string, [string, SyncedNode] | null> | undefined;
  for (const n of tree.values()) {
    if (n.id || n.kind !== "file") continue;
    byHash ??= syncedByHash(synced);
    const hit = byHash.get(n.hash);
    if (hit && !claimed.has(hit[1].id) && !tree.has(hit[0])) give(n, hit[1].id);
  }
  // No match by inode with other content: a file system reuses a deleted file's inode for the next new file (a git checkout does it by
  // the dozen), and taking those for renames would hide deletes from the guard. A rename and an edit together read as a delete and a new file.
  // (d) New.
  for (const n of tree.values()) if (!n.id) give(n, newId());
}

/** Synced files by content hash; null where more than one has it. */
function syncedByHash(synced: ReadonlyMap<string, SyncedNode>): Map<string, [string, SyncedNode] | null> {
  const out = new Map<string, [string, SyncedNode] | null>();
  for (const [p, n] of synced) {
    if (n.kind !== "file" || !n.hash) continue;
    out.set(n.hash, out.has(n.hash) ? null : [p, n]);
  }
  return out;
}

/** Synced's hash for the entry when its recorded stat vouches for it (isUnchanged, racy rule and all). */
function vouchedHash(e: LocalEntry, s: SyncedNode | undefined): string | undefined {
  if (!s?.stat || s.kind !== "file" || !s.hash) return undefined;
  const recorded: IndexEntry = { path: e.path, kind: "file", ...s.stat, contentHash: EMPTY, hashKind: 1, revision: 0 };
  return isUnchanged(e, recorded) ? s.hash : undefined;
}

const EMPTY = Buffer.alloc(0);

function statOf(e: LocalEntry, recordedNs: bigint): LocalStat {
  return { dev: e.dev, ino: e.ino, size: e.size, mtimeNs: e.mtimeNs, ctimeNs: e.ctimeNs, mode: e.mode, recordedNs };
}

function inodeKey(s: Pick<LocalStat, "dev" | "ino">): string {
  return `${s.dev}:${s.ino}`;
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}
