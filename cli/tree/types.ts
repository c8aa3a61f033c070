import type { Change } from "../../gen/drive/v1/feed_pb.js";
import type { FilterOptions, LocalIndex } from "../local/types.js";
import type { CompressMode } from "../transfer/compress/compress-policy.js";

/**
 * Whole-tree push and pull (cli/tree/): contract between cli/tree/ (which
 * implements it) and the commands and cli/watch/ (which call it). Files move
 * through one pool: one concurrency limit for the whole tree, across files
 * and parts. Small files (at most 8 MiB) go through TreeService batches, the
 * rest through UploadService one file each.
 */
export interface TreeOptions {
  /** The local root folder. */
  local: string;
  /** The remote folder, "" for the remote root; no leading or trailing slash. */
  remote: string;
  /** Make the target match: remove what the source lacks (remote removals stay as versions). */
  delete: boolean;
  /** The --delete guard: refuse when deletes would pass it. Default { percent: 50 }. */
  maxDelete: { percent: number } | { count: number };
  /** Print the plan (as events) and change nothing. */
  dryRun: boolean;
  filter: FilterOptions;
  /** Transfers in flight at once, across all files. */
  concurrency: number;
  compress: CompressMode;
  partSize?: number;
  signal: AbortSignal;
  /**
   * Watch mode: only these relative paths, and whatever lies under them,
   * are looked at (undefined: the whole tree). Deletes under them still need
   * `delete`.
   */
  only?: string[];
  /**
   * push --watch: a file whose size or mtime changed less than settleMs ago
   * is not sent yet; it comes back in TreeResult.unsettled. After hashing
   * and after sending, a file is checked again and left unsettled if it
   * changed meanwhile.
   */
  settleMs?: number;
}

export interface TreeResult {
  filesSent: number;
  bytesSent: number;
  filesSkipped: number;
  bytesSkipped: number;
  filesDeleted: number;
  filesFailed: number;
  /** Folder entries made (empty folders). */
  foldersMade: number;
  /** push --watch: paths not sent because they were still changing; look again later. */
  unsettled: string[];
  /** pull: the feed cursor the target now matches (ListFiles' cursor, or past the changes applied). */
  cursor: string;
}

/** A run refused before it changed anything: the --delete guard, a missing root. */
export class TreeRefused extends Error {
  constructor(
    message: string,
    readonly reason: "max_delete" | "missing_root" | "not_a_folder",
  ) {
    super(message);
  }
}

export type { Change, LocalIndex };

type DriveClient = import("../rpc/drive-client.js").DriveClient;
type RunListener = import("../transfer/events.js").RunListener;

/**
 * The entry points cli/tree/ exports (push-tree.ts, pull-tree.ts,
 * apply-changes.ts). The caller opens the root's index (cli/local/) and
 * closes it after. Each resolves with what it did, rejects with TreeRefused
 * before changing anything, or with the error that stopped it; files that
 * fail alone are counted in filesFailed and reported as file_failed.
 */
export type PushTree = (client: DriveClient, index: LocalIndex, opts: TreeOptions, emit: RunListener) => Promise<TreeResult>;
export type PullTree = (client: DriveClient, index: LocalIndex, opts: TreeOptions, emit: RunListener) => Promise<TreeResult>;
/**
 * pull --watch: applies feed changes under opts.remote to the local tree,
 * each atomically, by the same rules as PullTree. A local file that changed
 * since drive last wrote it (per the index) is never overwritten, deleted or
 * moved: it is kept, and the remote version is written beside it as
 * `name (conflicted copy <host> <YYYY-MM-DD HHMMSS>).ext`.
 */
export type ApplyChanges = (client: DriveClient, index: LocalIndex, opts: TreeOptions, changes: Change[], emit: RunListener) => Promise<TreeResult>;
