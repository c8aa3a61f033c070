import type { IndexEntry, IsUnchanged, LocalEntry, PathFilter } from "../local/types.js";
import type { RemoteEntry } from "./remote-list.js";
import { filteredOut, guardMessage, sameAttrsForPull, sameContent, within, type MaxDelete } from "./tree-attrs.js";

export interface PullPlanInput {
  remote: readonly RemoteEntry[];
  /** The local walk, filtered. */
  local: readonly LocalEntry[];
  index: { get(path: string): IndexEntry | undefined };
  isUnchanged: IsUnchanged;
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

/**
 * What a pull does with one remote file:
 * - fetch: nothing on disk, or what is there is what drive last wrote
 *   (the index vouches for it), so it may be replaced;
 * - attrs: the disk holds this content, as drive wrote it; only mode or
 *   mtime differ;
 * - check: something is on disk that the index does not vouch for (changed
 *   since drive wrote it, or never written by drive): hash it; the same
 *   content is adopted, other content is kept and the remote version
 *   written beside it as a conflicted copy;
 * - conflict: a folder is on disk where the remote has a file: the remote
 *   version goes beside it.
 */
export type PullFileOp =
  | { op: "fetch"; remote: RemoteEntry; disk?: LocalEntry }
  | { op: "attrs"; remote: RemoteEntry; disk: LocalEntry; recorded: IndexEntry }
  | { op: "check"; remote: RemoteEntry; disk: LocalEntry }
  | { op: "conflict"; remote: RemoteEntry; disk: LocalEntry };

export interface PullPlan {
  files: PullFileOp[];
  /** Unchanged: index, stat and listing agree; not read. */
  unchanged: Array<{ remote: RemoteEntry; disk: LocalEntry }>;
  /** Remote folder entries the disk lacks. */
  folders: RemoteEntry[];
  /**
   * With --delete: local files drive wrote and the remote no longer has.
   * Those the index does not vouch for by stat alone are read before they
   * go, and kept if their bytes are not what drive wrote.
   */
  deletes: LocalEntry[];
  /** With --delete: local files the remote lacks but that changed since drive wrote them: kept. */
  kept: LocalEntry[];
  /** With --delete: local folders the remote lacks, deepest first; removed when empty once the deletes are done. */
  folderDeletes: LocalEntry[];
  refused: string | null;
}

/**
 * Decides what a pull does, without I/O: the remote listing against the
 * local walk and index. A local file is replaced or deleted only when the
 * index vouches that it is what drive last wrote; anything else is read
 * (check) before it is touched, and kept when it differs.
 */
export function planPull(input: PullPlanInput): PullPlan {
  const disk = new Map(input.local.map((e) => [e.path, e]));
  const plan: PullPlan = { files: [], unchanged: [], folders: [], deletes: [], kept: [], folderDeletes: [], refused: null };
  const remotePaths = new Set<string>();
  const remoteFolders = new Set<string>();
  for (const r of input.remote) {
    if (filteredOut(input.filter, r.path, r.kind) || !within(input.only, r.path)) continue;
    remotePaths.add(r.path);
    for (let i = r.path.indexOf("/"); i > 0; i = r.path.indexOf("/", i + 1)) remoteFolders.add(r.path.slice(0, i));
    const d = disk.get(r.path);
    if (r.kind === "folder") {
      if (!d) plan.folders.push(r);
      continue;
    }
    if (!d) {
      plan.files.push({ op: "fetch", remote: r });
      continue;
    }
    if (d.kind === "folder") {
      plan.files.push({ op: "conflict", remote: r, disk: d });
      continue;
    }
    const recorded = input.index.get(r.path);
    if (!input.isUnchanged(d, recorded) || recorded!.kind !== "file") {
      plan.files.push({ op: "check", remote: r, disk: d });
      continue;
    }
    if (!sameContent(recorded!.contentHash, recorded!.hashKind, r.info)) plan.files.push({ op: "fetch", remote: r, disk: d });
    else if (!sameAttrsForPull(d, r.info)) plan.files.push({ op: "attrs", remote: r, disk: d, recorded: recorded! });
    else plan.unchanged.push({ remote: r, disk: d });
  }

  if (input.delete) {
    let files = 0;
    for (const d of input.local) {
      if (!within(input.only, d.path)) continue;
      if (d.kind === "file") files++;
      if (remotePaths.has(d.path) || remoteFolders.has(d.path) || within(input.unknown ?? [], d.path)) continue;
      const recorded = input.index.get(d.path);
      if (d.kind === "folder") plan.folderDeletes.push(d);
      // Drive wrote it, and the index vouches, or may once the bytes are read (a racy entry): deleteLocal decides.
      else if (input.isUnchanged(d, recorded) || (recorded?.kind === "file" && recorded.size === d.size)) plan.deletes.push(d);
      else plan.kept.push(d);
    }
    plan.folderDeletes.sort((a, b) => b.path.length - a.path.length);
    plan.refused = guardMessage(input.maxDelete, plan.deletes.length, files, "local");
  }
  return plan;
}
