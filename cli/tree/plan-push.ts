import type { IndexEntry, IsUnchanged, LocalEntry, PathFilter } from "../local/types.js";
import type { RemoteEntry } from "./remote-list.js";
import { filteredOut, guardMessage, sameAttrsForPush, sameContent, within, type MaxDelete } from "./tree-attrs.js";

export interface PushPlanInput {
  /** The local walk, filtered: files and folders. */
  local: readonly LocalEntry[];
  index: { get(path: string): IndexEntry | undefined };
  isUnchanged: IsUnchanged;
  remote: readonly RemoteEntry[];
  filter: PathFilter;
  delete: boolean;
  maxDelete: MaxDelete;
  only?: readonly string[];
  /**
   * Paths the walk skipped (symlinks, collisions, unsafe names, unreadable
   * folders) or the fence refused: unknown, not absent, so nothing at or
   * under them is deleted on the other side.
   */
  unknown?: readonly string[];
}

/** One local file to bring to the remote. */
export interface PushFile {
  entry: LocalEntry;
  /** The remote's state at the path, if it holds a file there. */
  remote?: RemoteEntry;
  /**
   * The content hash when the index vouches for the disk (IsUnchanged): the
   * file need not be read to know it differs. Absent: it must be hashed.
   */
  knownHash?: Buffer;
}

export interface PushPlan {
  /** Files whose content or attributes may differ: hashed (if need be) and sent. */
  send: PushFile[];
  /** Files the index and the listing agree on: content hash and attributes equal; never read. */
  unchanged: Array<{ entry: LocalEntry; remote: RemoteEntry }>;
  /** Empty local folders the remote lacks: folder entries. "" is the remote folder itself. */
  folders: LocalEntry[];
  /** Remote paths (relative) the source lacks, with --delete. */
  deletes: RemoteEntry[];
  /** The --delete guard's refusal, when it refuses. */
  refused: string | null;
}

/**
 * Decides what a push does, without I/O: the local walk and index against
 * the remote listing. "Content differs" is decided by content hash; a file
 * the index vouches for (unchanged since drive recorded it) keeps the
 * index's hash, so an unchanged tree is recognised without reading a file.
 * Filtered remote paths are never deleted; deletes stay inside `only`.
 */
export function planPush(input: PushPlanInput): PushPlan {
  const remoteByPath = new Map(input.remote.map((r) => [r.path, r]));
  const localPaths = new Set(input.local.map((e) => e.path));
  const plan: PushPlan = { send: [], unchanged: [], folders: [], deletes: [], refused: null };
  // A folder is empty when no entry lies under it: entries are in path order, so check the next path.
  const sorted = [...input.local].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const hasChildren = new Set<string>();
  for (const e of sorted) {
    const slash = e.path.lastIndexOf("/");
    if (slash > 0) hasChildren.add(e.path.slice(0, slash));
  }
  const remoteFolders = new Set<string>();
  for (const r of input.remote) for (let i = r.path.indexOf("/"); i > 0; i = r.path.indexOf("/", i + 1)) remoteFolders.add(r.path.slice(0, i));
  const remoteHasUnder = (p: string) => remoteFolders.has(p);

  for (const e of sorted) {
    if (!within(input.only, e.path)) continue;
    const r = remoteByPath.get(e.path);
    if (e.kind === "folder") {
      if (hasChildren.has(e.path)) continue;
      if (r?.kind === "folder" || remoteHasUnder(e.path)) continue;
      plan.folders.push(e);
      continue;
    }
    const recorded = input.index.get(e.path);
    const knownHash = input.isUnchanged(e, recorded) && recorded!.kind === "file" ? recorded! : undefined;
    const remoteFile = r?.kind === "file" ? r : undefined;
    if (knownHash && remoteFile && sameContent(knownHash.contentHash, knownHash.hashKind, remoteFile.info) && sameAttrsForPush(e, remoteFile.info)) {
      plan.unchanged.push({ entry: e, remote: remoteFile });
      continue;
    }
    plan.send.push({ entry: e, ...(remoteFile ? { remote: remoteFile } : {}), ...(knownHash && knownHash.hashKind === 1 ? { knownHash: knownHash.contentHash } : {}) });
  }
  // The whole source is empty: the target folder itself becomes an entry, so that it exists (and stays once --delete empties it).
  if (input.local.length === 0 && !input.only) {
    plan.folders.push({ path: "", kind: "folder", size: 0, mtimeNs: 0n, ctimeNs: 0n, mode: 0, dev: 0n, ino: 0n });
  }

  if (input.delete) {
    const counted = input.remote.filter((r) => !filteredOut(input.filter, r.path, r.kind));
    for (const r of counted) {
      if (!within(input.only, r.path) || localPaths.has(r.path) || within(input.unknown ?? [], r.path)) continue;
      plan.deletes.push(r);
    }
    plan.refused = guardMessage(input.maxDelete, plan.deletes.length, counted.length, "remote");
  }
  return plan;
}
