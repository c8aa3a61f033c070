import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { open, type Database, type RootDatabase } from "lmdb";
import { checkRemotePath } from "../../shared/rules/remote-path.js";
import { CliError } from "../errors.js";
import { comparePaths } from "./path-order.js";
import type { IndexEntry, IndexKey, LocalIndex } from "./types.js";

/**
 * The local index of a sync root, on LMDB (the `lmdb` package). Why LMDB:
 * a B+tree in one memory-mapped file with copy-on-write pages and two meta
 * pages, so a commit is atomic and a crash (kill -9, power loss) leaves the
 * last committed state, with no recovery step and no log to replay; reads
 * are lock-free and fast at a million entries; several processes may open
 * one file at once (a push and a pull --watch of the same root), writers
 * serialised by its lock file; and the package ships prebuilt binaries with
 * no install script. SQLite would do too, but needs a native build here;
 * a JSON file rewritten whole does not scale to a million entries.
 *
 * Durability, the exact settings: overlappingSync false (lmdb-js's default
 * on Linux is true, which resolves a write at commit and flushes later);
 * noSync false and noMetaSync false (each commit fsyncs the data pages,
 * then writes and fsyncs the meta page that makes them live); useWritemap
 * false (pages go out with pwrite, so a stray write through the map cannot
 * touch the file). So the promise of a write resolves only after its
 * commit returned, synced; update() also awaits `flushed`. A crash at any
 * moment leaves either the state before a transaction or the state after.
 *
 * Where: <cache>/index/<sha256 of the key>.mdb (and its -lock file), where
 * <cache> is $DRIVE_CACHE_DIR, or $XDG_CACHE_HOME/drive, or ~/.cache/drive.
 * With DRIVE_CACHE_DIR=off the index lives in a fresh temporary folder,
 * removed on close: everything works, nothing carries over between runs
 * (an unchanged tree is hashed again, a watch starts from a full listing).
 *
 * Keys are the UTF-8 bytes of paths (binary keys: lmdb's ordered-binary
 * string keys give low bytes a meaning of their own), so LMDB's byte order
 * is path order (comparePaths). LMDB caps a key at 1978 bytes and a path may
 * have 4096: a longer path is keyed by its first KEY_BYTES bytes, a 0 byte
 * (no path holds one, so it sorts right after the head) and a hash of the
 * whole, and keeps the whole in its value; entries() re-sorts the few keys
 * that share such a head.
 *
 * Values are compact msgpack tuples (lmdb's default encoding); the bigint
 * fields are msgpack int64/uint64, so no precision is lost.
 */
export function indexBaseDir(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.DRIVE_CACHE_DIR === "off") return null;
  if (env.DRIVE_CACHE_DIR) return join(env.DRIVE_CACHE_DIR, "index");
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "drive", "index");
}

/** The index file for a key under `base`. */
export function indexFile(base: string, key: IndexKey): string {
  const id = createHash("sha256").update(JSON.stringify([key.server, key.remoteRoot, key.localRoot])).digest("hex").slice(0, 32);
  return join(base, `${id}.mdb`);
}

const FORMAT = "1";
const KEY_BYTES = 1900;

/**
 * Opens (creating it if need be) the index for `key`. `dir` is the folder
 * the index files go in: undefined for indexBaseDir(), null for a
 * temporary index removed on close.
 */
export async function openIndex(key: IndexKey, dir?: string | null): Promise<LocalIndex> {
  const base = dir === undefined ? indexBaseDir() : dir;
  const temp = base === null ? await mkdtemp(join(tmpdir(), "drive-index-")) : null;
  const folder = temp ?? base!;
  await mkdir(folder, { recursive: true, mode: 0o700 });
  const file = indexFile(folder, key);
  let env: RootDatabase;
  try {
    env = open({ path: file, maxDbs: 4, overlappingSync: false, noSync: false, noMetaSync: false, useWritemap: false, compression: false, cache: false });
  } catch (err) {
    if (temp) await rm(temp, { recursive: true, force: true });
    throw new CliError("internal", `${file}: cannot open the local index: ${(err as Error).message}; removing it makes the next run start over`, { cause: err });
  }
  const store = new LmdbIndex(env, file, temp);
  try {
    await store.checkFormat(key);
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

type Tuple = [
  longPath: string | null,
  kind: 0 | 1,
  size: number,
  mtimeNs: bigint,
  ctimeNs: bigint,
  mode: number,
  dev: bigint,
  ino: bigint,
  contentHash: Uint8Array,
  hashKind: 1 | 2,
  revision: number,
  recordedNs: bigint,
];

class LmdbIndex implements LocalIndex {
  private readonly entriesDb: Database<Tuple, Buffer>;
  private readonly values: Database<string, string>;
  private readonly meta: Database<string, string>;
  private closed = false;

  constructor(
    private readonly env: RootDatabase,
    readonly file: string,
    private readonly temp: string | null,
  ) {
    this.entriesDb = env.openDB<Tuple, Buffer>({ name: "entries", keyEncoding: "binary" });
    this.values = env.openDB<string, string>({ name: "values", encoding: "string" });
    this.meta = env.openDB<string, string>({ name: "meta", encoding: "string" });
  }

  async checkFormat(key: IndexKey): Promise<void> {
    const format = this.meta.get("format");
    if (format === undefined) {
      await this.meta.transaction(() => {
        if (this.meta.get("format") !== undefined) return;
        this.meta.put("format", FORMAT);
        this.meta.put("key", JSON.stringify(key));
      });
      await this.env.flushed;
    } else if (format !== FORMAT) {
      throw new CliError("internal", `${this.file}: a local index of format ${format}, not ${FORMAT} (written by another version of drive); remove it to start over`);
    }
  }

  get size(): number {
    return (this.entriesDb.getStats() as { entryCount: number }).entryCount;
  }

  get(path: string): IndexEntry | undefined {
    const v = this.entriesDb.get(keyOf(path));
    if (v === undefined) return undefined;
    const e = decode(path, v);
    return e.path === path ? e : undefined;
  }

  *entries(prefix?: string): Iterable<IndexEntry> {
    yield* this.scan(prefix ?? "");
  }

  async update(puts: IndexEntry[], removals: string[] = []): Promise<void> {
    if (puts.length === 0 && removals.length === 0) return;
    for (const e of puts) checkPath(e.path);
    const now = nowNs();
    const rows = puts.map((e) => [keyOf(e.path), encode(e, now)] as const);
    const gone = removals.map(keyOf);
    // Removals first: a path both removed and put ends up put.
    await this.entriesDb.transaction(() => {
      for (const k of gone) this.entriesDb.remove(k);
      for (const [k, v] of rows) this.entriesDb.put(k, v);
    });
    await this.env.flushed;
  }

  /**
   * Whatever the index held at `to` and under it is replaced, as a rename
   * on disk replaces it. Refuses moving a path under itself or onto an
   * ancestor (no file system rename does either).
   */
  async move(from: string, to: string): Promise<void> {
    checkPath(from);
    checkPath(to);
    if (from === to) return;
    if (to.startsWith(from + "/") || from.startsWith(to + "/")) {
      throw new CliError("internal", `cannot move ${JSON.stringify(from)} to ${JSON.stringify(to)}: one lies inside the other`);
    }
    const now = nowNs();
    await this.entriesDb.transaction(() => {
      const moving = [...this.exact(from), ...this.scan(from + "/")];
      const replaced = [...this.exact(to), ...this.scan(to + "/")];
      for (const e of replaced) this.entriesDb.remove(keyOf(e.path));
      for (const e of moving) this.entriesDb.remove(keyOf(e.path));
      for (const e of moving) {
        const path = to + e.path.slice(from.length);
        this.entriesDb.put(keyOf(path), encode({ ...e, path }, now));
      }
    });
    await this.env.flushed;
  }

  getValue(key: string): string | undefined {
    return this.values.get(key);
  }

  async setValue(key: string, value: string): Promise<void> {
    await this.values.put(key, value);
    await this.env.flushed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.env.flushed;
    await this.env.close();
    if (this.temp) await rm(this.temp, { recursive: true, force: true });
  }

  private *exact(path: string): Iterable<IndexEntry> {
    const e = this.get(path);
    if (e) yield e;
  }

  /** Every entry whose path starts with `prefix`, in path order. */
  private *scan(prefix: string): Generator<IndexEntry> {
    const start = headOf(prefix);
    let group: IndexEntry[] | null = null;
    let groupHead = Buffer.alloc(0);
    const range = this.entriesDb.getRange(start.length === 0 ? {} : { start });
    for (const { key, value } of range) {
      if (!startsWith(key, start)) break;
      const mark = key.indexOf(0);
      const e = decode(mark >= 0 ? "" : key.toString("utf8"), value);
      if (group) {
        if (startsWith(key, groupHead)) {
          group.push(e);
          continue;
        }
        yield* sortedUnder(group, prefix);
        group = null;
      }
      if (mark >= 0) {
        // Keys sharing this head hold paths in hash order: gather them all, then sort.
        group = [e];
        groupHead = Buffer.from(key.subarray(0, mark));
        continue;
      }
      if (e.path.startsWith(prefix)) yield e;
    }
    if (group) yield* sortedUnder(group, prefix);
  }
}

function sortedUnder(group: IndexEntry[], prefix: string): IndexEntry[] {
  return group.filter((e) => e.path.startsWith(prefix)).sort((a, b) => comparePaths(a.path, b.path));
}

function checkPath(path: string): void {
  const why = checkRemotePath(path);
  if (why) throw new CliError("internal", `local index: refusing ${JSON.stringify(path)}: ${why}`);
}

function isLong(path: string): boolean {
  return path.length * 3 > KEY_BYTES && Buffer.byteLength(path) > KEY_BYTES;
}

function keyOf(path: string): Buffer {
  if (!isLong(path)) return Buffer.from(path, "utf8");
  return Buffer.concat([headOf(path), Buffer.of(0), createHash("sha256").update(path).digest().subarray(0, 16)]);
}

/** The first KEY_BYTES bytes of `path` in UTF-8 (all of a shorter one). */
function headOf(path: string): Buffer {
  const b = Buffer.from(path, "utf8");
  return b.length <= KEY_BYTES ? b : b.subarray(0, KEY_BYTES);
}

function startsWith(key: Buffer, head: Buffer): boolean {
  return key.length >= head.length && key.compare(head, 0, head.length, 0, head.length) === 0;
}

function encode(e: IndexEntry, now: bigint): Tuple {
  return [
    isLong(e.path) ? e.path : null,
    e.kind === "folder" ? 1 : 0,
    e.size,
    e.mtimeNs,
    e.ctimeNs,
    e.mode,
    e.dev,
    e.ino,
    e.contentHash,
    e.hashKind,
    e.revision,
    e.recordedNs ?? now,
  ];
}

function decode(key: string, v: Tuple): IndexEntry {
  return {
    path: v[0] ?? key,
    kind: v[1] === 1 ? "folder" : "file",
    size: v[2],
    mtimeNs: BigInt(v[3]),
    ctimeNs: BigInt(v[4]),
    mode: v[5],
    dev: BigInt(v[6]),
    ino: BigInt(v[7]),
    // lmdb may hand out a view of a buffer it reuses: copy it.
    contentHash: Buffer.from(v[8]),
    hashKind: v[9],
    revision: v[10],
    recordedNs: BigInt(v[11]),
  };
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}
