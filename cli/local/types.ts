/**
 * The local side of a tree (cli/local/): walking a root, filters, the local
 * index and the fence. Contract between cli/local/ (which implements it) and
 * cli/tree/, cli/watch/ (which use it). Paths here are always relative to the
 * root, slash-separated, NFC, and pass shared/rules/remote-path.ts.
 */

/** One entry found under a root. Symlinks are never entries: the walk reports them as warnings. */
export interface LocalEntry {
  /** Relative path, NFC (the remote spelling). */
  path: string;
  /** The name as it is on disk, relative to the root, when it differs from path (not NFC). */
  diskPath?: string;
  kind: "file" | "folder";
  /** 0 for a folder. */
  size: number;
  /** Nanoseconds since the epoch, from lstat with bigint: exact, for change detection. */
  mtimeNs: bigint;
  ctimeNs: bigint;
  /** mode & 0o7777. */
  mode: number;
  dev: bigint;
  ino: bigint;
}

export interface WalkOptions {
  filter: PathFilter;
  signal?: AbortSignal;
  /** A symlink, an unreadable folder, a name collision, a name the server would refuse: skipped, and said why. */
  onSkip?: (path: string, reason: "symlink" | "collision" | "unsafe_name" | "unreadable", detail: string) => void;
  /** Counts as the walk goes, for "scanning" progress. */
  onProgress?: (entries: number) => void;
}

/** Include/exclude globs and .driveignore (gitignore syntax), decided by relative path. */
export interface PathFilter {
  /** True when the path (a folder when dir) is left out. A left-out folder is never walked. */
  excludes(path: string, dir: boolean): boolean;
}

export interface FilterOptions {
  /** --exclude globs, gitignore-style, relative to the root. */
  exclude: string[];
  /** --include globs: when any are given, only matching files are taken (folders are walked). */
  include: string[];
  /** Contents of <root>/.driveignore, when it exists. */
  ignoreFile?: string;
}

/**
 * What the index knows of one path: how it was on disk when drive last
 * pushed or pulled it, and which remote revision that was. The stat fields
 * say whether the disk still holds it; contentHash says what it held.
 */
export interface IndexEntry extends Omit<LocalEntry, "diskPath"> {
  /** 32 bytes; empty for a folder. */
  contentHash: Buffer;
  /** ContentHashKind (1 BLAKE3 of the bytes, 2 the old chunk-list hash): which definition contentHash holds. */
  hashKind: 1 | 2;
  /** Remote revision this local state matches; 0 when never synced. */
  revision: number;
  /**
   * When the stat fields were read, in
   * nanoseconds since the epoch. A file changed in the same clock tick as
   * that stat can change again with no visible trace (same size, mtime and
   * ctime: git's "racy clean" problem), so isUnchanged never trusts an entry
   * whose mtime or ctime is that close to it. Optional: the caller may set
   * it (just before its lstat, best); update() fills in its own time when
   * it is absent, and get() and entries() always return it.
   */
  recordedNs?: bigint;
}

/**
 * The local index of one sync root: path -> IndexEntry, plus a few named
 * values (the feed cursor). Crash-safe: every write is a transaction that is
 * on disk before the promise resolves, and a caller records a state only
 * after it is on disk (a pushed file committed, a pulled file renamed into
 * place), so the index never claims what the disk does not hold.
 */
export interface LocalIndex {
  get(path: string): IndexEntry | undefined;
  /** Every entry in path order, optionally under a prefix (a folder path plus "/"). */
  entries(prefix?: string): Iterable<IndexEntry>;
  /** Writes and removals in one transaction. */
  update(puts: IndexEntry[], removals?: string[]): Promise<void>;
  /** Renames path and everything under it (path + "/"), in one transaction. */
  move(from: string, to: string): Promise<void>;
  getValue(key: "cursor" | string): string | undefined;
  setValue(key: "cursor" | string, value: string): Promise<void>;
  readonly size: number;
  close(): Promise<void>;
}

/** Which index a root gets: one per (server, remote folder, local folder). */
export interface IndexKey {
  server: string;
  remoteRoot: string;
  /** realpath of the local root. */
  localRoot: string;
}

/** True when a disk entry still is what the index recorded: same size, mtime, ctime, inode, device and mode. */
export type IsUnchanged = (disk: LocalEntry, recorded: IndexEntry | undefined) => boolean;
