/**
 * Two-way sync (cli/sync/): the contract between its parts.
 *
 * Three trees per sync root, as Dropbox's Nucleus keeps them:
 * - Remote: what the server says, kept from the feed (remote-tree.ts);
 * - Local: what the disk says, from a scan against Synced (scan-local.ts,
 *   local-tree.ts);
 * - Synced: the last state both sides agreed on, the merge base
 *   (state-store.ts).
 *
 * A change is what differs from Synced. plan.ts turns the three trees into
 * operations with no I/O; execute.ts carries them out, each checked against
 * the disk and the server's revision just before, and records Synced only
 * after both sides confirmed. sync-run.ts loops refresh, scan, plan,
 * execute until nothing is left to do.
 *
 * Paths are relative to the sync root (the remote folder on one side, the
 * local folder on the other), NFC, slash-separated, valid by
 * shared/rules/remote-path.ts. "" is the root itself and never a node.
 */

export type NodeKind = "file" | "folder";

/**
 * One path's state in a tree. A node's id is its identity across renames:
 * the same id in two trees is the same file, wherever each tree has it.
 * Ids are opaque strings, unique within a tree.
 */
export interface SyncNode {
  id: string;
  kind: NodeKind;
  /**
   * A file's content: lowercase hex of BLAKE3-256 of its bytes. A remote
   * file stored with the old chunk-list hash (ContentHashKind 2) has
   * "cl:" + hex, which never equals a local hash. "" for a folder.
   */
  hash: string;
  /** Bytes; 0 for a folder. */
  size: number;
  /** Permission bits, mode & 0o777, for a file; 0 for a folder or when not known. */
  mode: number;
  /** A file's own mtime in whole microseconds since the epoch; 0 for a folder or when not known. */
  mtimeUs: number;
}

export interface RemoteNode extends SyncNode {
  /** The server's current revision of the path; 0 for a folder only implied by paths under it. */
  revision: number;
}

/** What the disk said of an entry when it was last recorded: enough to tell, without reading, that it has not changed. */
export interface LocalStat {
  dev: bigint;
  ino: bigint;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  /** mode & 0o7777. */
  mode: number;
  /** When the stat was taken (ns since the epoch), for the racy-entry rule of cli/local/unchanged.ts. */
  recordedNs: bigint;
}

export interface LocalNode extends SyncNode {
  /** The entry's stat now. */
  stat: LocalStat;
  /**
   * The file changed too recently to trust (sync waits until it is stable,
   * as push --watch does): the planner neither sends nor replaces it, and
   * never takes it for deleted.
   */
  unstable?: boolean;
}

/** The merge base: the state both sides agreed on, with the local stat it was agreed at. */
export interface SyncedNode extends SyncNode {
  /** The local entry as it was when this was recorded; absent when not known (then the file is read to compare). */
  stat?: LocalStat;
}

/** A tree: path to node. Folders that files pass through are nodes too (on the remote side, implied ones have revision 0). */
export type Tree<N extends SyncNode> = ReadonlyMap<string, N>;

/**
 * The planner's operations. Each is independent: it names everything its
 * executor must check first, and if a check fails it does nothing and the
 * next round plans again from what is there. Order within a plan matters
 * only for efficiency: the executor runs moves first (shallowest first),
 * then the rest, keeping the plan's order among deletes (a folder's delete
 * comes after its children's). Every operation that succeeds says how Synced changes
 * (see recordOutcome in plan-effects.ts), and only then is it recorded.
 */
export type SyncOp =
  /**
   * Send the local file at path to the server. The local file must still
   * be `local` (same stat, or same hash when read again); the server
   * commits only if the path is still at baseRevision (0: must hold no live
   * entry). Synced[path] becomes the local node, under id.
   */
  | { type: "upload"; path: string; id: string; local: LocalNode; baseRevision: number; why: OpWhy }
  /** Record a folder entry on the server. Synced[path] becomes this folder. */
  | { type: "remote_mkdir"; path: string; id: string; why: OpWhy }
  /**
   * Set mode and mtime of a file on the server (content unchanged), only
   * if still at baseRevision; the local file must still be `local`.
   */
  | { type: "remote_attrs"; path: string; id: string; local: LocalNode; baseRevision: number; why: OpWhy }
  /** Record a deletion on the server, only if still at baseRevision (a folder entry: baseRevision is its revision, 0 when implied: then only Synced changes). */
  | { type: "remote_delete"; path: string; kind: NodeKind; baseRevision: number; why: OpWhy }
  /** Move a file or folder (and all under it) on the server; for a file only if still at baseRevision. Synced moves with it. */
  | { type: "remote_move"; from: string; to: string; kind: NodeKind; baseRevision: number; why: OpWhy }
  /**
   * Write the remote file at path to disk, atomically. What the local path
   * holds must still be `replaces` (null: nothing). Synced[path] becomes
   * the remote node.
   */
  | { type: "download"; path: string; remote: RemoteNode; replaces: LocalNode | null; why: OpWhy }
  /** Make a local folder (and its parents). Synced[path] becomes the remote folder node. */
  | { type: "local_mkdir"; path: string; remote: RemoteNode; why: OpWhy }
  /** Set a local file's mode and mtime to the remote's; it must still be `local`. */
  | { type: "local_attrs"; path: string; local: LocalNode; remote: RemoteNode; why: OpWhy }
  /** Delete a local file (it must still be `local`) or an empty local folder. Synced[path] goes. */
  | { type: "local_delete"; path: string; local: LocalNode; why: OpWhy }
  /** Rename a local file or folder; the source must still be `local`, nothing may be at `to`. Synced moves with it. */
  | { type: "local_move"; from: string; to: string; local: LocalNode; why: OpWhy }
  /**
   * Rename the local file or folder at path out of the way, to `to` (a
   * conflicted-copy name), because the other side's version takes the
   * path. It must still be `local`; nothing may be at `to`. Synced[path]
   * (op.synced, when there is one) forgets its stat, so the copy is not
   * taken for a rename by its inode: it is new and syncs as any new file;
   * the path then reads as deleted here, which the other side's edit beats.
   * The executor runs conflict copies with the moves, before the rest.
   */
  | { type: "conflict_copy"; path: string; to: string; local: LocalNode; synced?: SyncedNode; why: OpWhy }
  /**
   * Both sides already agree at path: Synced[path] becomes node (its stat
   * from the local node). With from, both sides moved the node there from
   * Synced's path `from`: Synced moves first (its subtree with it). No I/O.
   */
  | { type: "record"; path: string; from?: string; node: SyncedNode; why: OpWhy }
  /** Neither side has path any more: Synced[path] goes. No I/O. */
  | { type: "forget"; path: string; why: OpWhy };

export type SyncOpType = SyncOp["type"];

/** Why an operation was planned, for --json, --dry-run and status. */
export type OpWhy =
  | "local_new"
  | "local_edit"
  | "local_attrs"
  | "local_delete"
  | "local_move"
  | "remote_new"
  | "remote_edit"
  | "remote_attrs"
  | "remote_delete"
  | "remote_move"
  /** Both sides changed the path differently: the local version becomes a conflicted copy. */
  | "conflict"
  /** One side deleted what the other edited: the edit survives (the delete is reported). */
  | "edit_beats_delete"
  /** Both sides made the same change. */
  | "same_change";

export interface PlanInput {
  synced: Tree<SyncedNode>;
  local: Tree<LocalNode>;
  remote: Tree<RemoteNode>;
  /** --max-delete: deletes (after renames are taken out) past which the plan halts, per side. */
  maxDelete: MaxDelete;
  /** --force: the guard is off for this run. */
  force: boolean;
  /**
   * Paths (with everything under them) the planner must not see on any of
   * the three trees: excluded by the filter, unreadable, skipped by the
   * walk. A new ignore rule so never turns into deletes.
   */
  unknown?: (path: string) => boolean;
  /** Names conflicted copies: `conflictName(path)` (cli/tree/conflict-name.ts with this device and time). */
  conflictName: (path: string) => string;
}

/**
 * The guard: a plan whose deletes on one side exceed this halts. The
 * percent is of the Synced files; small counts (at most `floor`) never
 * halt, so deleting 2 of 3 files needs no --force.
 */
export type MaxDelete = { percent: number; floor: number } | { count: number };

export interface Plan {
  ops: SyncOp[];
  /** Set when the plan deletes too much: then ops holds no deletes (nor anything else), and this says why. */
  halted?: SyncHalt;
  /** What the user should hear of even when nothing fails: an edit that beat a delete, a conflict. */
  notes: Array<{ path: string; why: OpWhy; message: string }>;
}

export interface SyncHalt {
  reason: "max_delete" | "root_missing" | "root_empty" | "marker_missing" | "device_changed" | "remote_root_missing";
  message: string;
}

/** plan.ts: a pure function. Never throws on any trees; the same input always gives the same plan. */
export type PlanSync = (input: PlanInput) => Plan;

/** One primitive change to a tree, applied in order: what an outcome or a feed change does to Synced or Remote. */
export type TreeStep<N extends SyncNode> =
  | { type: "set"; path: string; node: N }
  /** Removes the path alone (a folder's children stay). */
  | { type: "remove"; path: string }
  /** Moves path and everything under it (path + "/"), replacing what was at to and under it. */
  | { type: "move"; from: string; to: string };

/**
 * The persistent state of one sync root (state-store.ts, on LMDB like the
 * local index, with the same durability: a write resolves only once synced
 * to disk, and a crash leaves the state before or after a transaction).
 * The trees are held in memory and written through.
 */
export interface SyncState {
  readonly synced: Tree<SyncedNode>;
  readonly remote: Tree<RemoteNode>;
  /** The feed cursor Remote is at; "" before the first listing. */
  readonly cursor: string;
  /** Applies steps to Synced in one transaction. */
  editSynced(steps: TreeStep<SyncedNode>[]): Promise<void>;
  /** Applies steps to Remote and sets the cursor, in one transaction (cursor "" with replace: a fresh listing). */
  editRemote(steps: TreeStep<RemoteNode>[], cursor: string, opts?: { replace?: boolean }): Promise<void>;
  /** Named values: "halt" (JSON SyncHalt of the last run, or absent), "last_sync" (ISO time), "root_dev", "marker". */
  getValue(key: string): string | undefined;
  setValue(key: string, value: string | undefined): Promise<void>;
  /** A fresh id, unique in this state forever. */
  newId(): string;
  close(): Promise<void>;
}

/** Which state a root gets: one per (server, remote folder, local folder), apart from push and pull's index. */
export interface SyncKey {
  server: string;
  remoteRoot: string;
  /** realpath of the local root. */
  localRoot: string;
}

/**
 * The marker file a sync root holds (MARKER_NAME, in the root itself). Its
 * loss means the root is not the folder that was synced (an unmounted
 * disk, a folder recreated empty): the guard halts. It is never synced.
 */
export const MARKER_NAME = ".drive-sync";

export interface ScanOptions {
  root: string;
  filter: import("../local/types.js").PathFilter;
  synced: Tree<SyncedNode>;
  /** A file whose mtime or ctime is newer than this many ms is unstable (LocalNode.unstable). */
  settleMs: number;
  signal: AbortSignal;
  /** A symlink, an unreadable entry, a name collision or a name the server refuses: left out and unknown. */
  onSkip?: (path: string, reason: "symlink" | "collision" | "unsafe_name" | "unreadable", detail: string) => void;
  onProgress?: (entries: number) => void;
  /** Fresh ids for local nodes that match nothing in Synced. */
  newId: () => string;
}

export interface LocalScan {
  tree: Map<string, LocalNode>;
  /** Paths that could not be read or are not ours to sync: unknown, never deleted on either side. */
  unknown: Set<string>;
  /** Bytes read to hash files whose stat changed. */
  bytesHashed: number;
}

/** scan-local.ts: walks the root (MARKER_NAME left out), hashes what Synced cannot vouch for, gives ids (inode first, then path, then a unique hash). */
export type ScanLocal = (opts: ScanOptions) => Promise<LocalScan>;

/** What one operation did, as execute.ts reports it. */
export interface OpOutcome {
  op: SyncOp;
  outcome: "done" | "skipped" | "failed";
  /** skipped: which check failed (the local file changed, the server moved on); failed: the error. */
  message?: string;
  /** failed: the CLI error code (cli/errors.ts). */
  code?: string;
}

export interface ExecuteOptions {
  /** The local root (its realpath). */
  root: string;
  /** The remote folder, "" for the remote root. */
  remote: string;
  concurrency: number;
  compress: import("../transfer/compress/compress-policy.js").CompressMode;
  signal: AbortSignal;
}

/**
 * execute.ts: carries out a plan's operations (moves first, shallowest
 * first; then the rest, transfers in one pool), each after its checks,
 * and records each success in state.synced as plan-effects.ts says. Local
 * writes go through the fence (cli/local/fence.ts) and are atomic.
 * Resolves with every operation's outcome; rejects only on abort or when
 * the state cannot be written.
 */
export type ExecutePlan = (
  client: import("../rpc/drive-client.js").DriveClient,
  state: SyncState,
  ops: SyncOp[],
  opts: ExecuteOptions,
  emit: import("../transfer/events.js").RunListener,
) => Promise<OpOutcome[]>;

export interface SyncOptions extends ExecuteOptions {
  /** The local root as the user gave it. */
  local: string;
  dryRun: boolean;
  force: boolean;
  maxDelete: MaxDelete;
  filter: import("../local/types.js").FilterOptions;
  /** Files changed more recently than this are synced later. */
  settleMs: number;
  /** Where the state lives: undefined for the default (beside the local index), null for a temporary one. */
  stateDir?: string | null;
}

export interface SyncResult {
  rounds: number;
  opsDone: number;
  opsFailed: number;
  /** Conflicted copies made. */
  conflicts: number;
  /** Set when the guard stopped the run: nothing was deleted. */
  halted?: SyncHalt;
  /** Files left for later: still changing, or failed. */
  pending: string[];
  /** The CLI error code (cli/errors.ts) of the first operation that failed, for the exit code (added by hc). */
  firstFailure?: string;
}

/** sync-run.ts: one two-way sync of a root, round after round until nothing is left to do (or a bound on rounds). */
export type RunSync = (client: import("../rpc/drive-client.js").DriveClient, opts: SyncOptions, emit: import("../transfer/events.js").RunListener) => Promise<SyncResult>;

/**
 * state-store.ts: opens (creating) the state of one root. `dir`: undefined
 * for the default (syncBaseDir(), beside the local index: $DRIVE_CACHE_DIR/sync
 * or ~/.cache/drive/sync), null for a temporary state removed on close.
 * Two processes on one root: the second fails with a clear CliError
 * ("another drive sync is running on ROOT").
 */
export type OpenSyncState = (key: SyncKey, dir?: string | null) => Promise<SyncState>;

/**
 * remote-tree.ts: brings state.remote up to the server. From state.cursor
 * it reads the feed (FeedService, caught up, not following) and applies
 * each change as TreeSteps; with no cursor, or on CURSOR_RESET, it lists the
 * remote folder afresh (replace). Ids: a move keeps the node's id; a path
 * new to Remote takes Synced's id at that path when the kinds agree, else
 * state.newId(). Folders only implied by paths under them are nodes with
 * revision 0, and go when nothing is left under them.
 */
export type RefreshRemote = (
  client: import("../rpc/drive-client.js").DriveClient,
  state: SyncState,
  remote: string,
  signal: AbortSignal,
) => Promise<{ changed: boolean; reset: boolean }>;

/**
 * What MARKER_NAME holds (JSON), so `drive status DIR` finds the state of a
 * root from the folder alone.
 */
export interface MarkerContent {
  server: string;
  remote: string;
  /** Random, kept in the state as "marker": a marker copied from another root does not pass. */
  id: string;
}

/**
 * guard.ts: the checks of the local root before anything is planned. Once
 * the root has synced (Synced not empty): it must exist, be a folder, be on
 * the device recorded ("root_dev") and hold the marker with the state's
 * id. Before the first sync (or with force) it writes the marker and
 * records the device. Returns the halt, or null to go on.
 */
export type CheckRoots = (state: SyncState, key: SyncKey, force: boolean) => Promise<SyncHalt | null>;
