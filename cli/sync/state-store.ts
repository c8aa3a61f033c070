import { open as fsOpen, mkdir, mkdtemp, rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { open, type Database, type RootDatabase } from "lmdb";
import { CliError } from "../errors.js";
import { indexFile } from "../local/index-store.js";
import { applySteps, isUnder } from "./plan-effects.js";
import { decodeRemote, decodeSynced, encodeRemote, encodeSynced, keyOf, type NodeTuple } from "./state-codec.js";
import { takeLock } from "./state-lock.js";
import type { OpenSyncState, RemoteNode, SyncedNode, SyncKey, SyncState, TreeStep } from "./types.js";

/**
 * The state of a sync root (types.ts, SyncState) on LMDB, opened exactly
 * as the local index is (cli/local/index-store.ts says why, and why these
 * settings make every write transaction synced before its promise
 * resolves, and a crash leave the state before or after it). Three
 * databases, synced and remote (path to node) and values, plus meta (the
 * format, the key, the cursor and the id reservation). The trees are read
 * into memory on open and written through: an edit changes the Map at once
 * and the database in one transaction.
 *
 * Where: <base>/<hash of the key>.mdb, <base> being syncBaseDir().
 */
export function syncBaseDir(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.DRIVE_CACHE_DIR === "off") return null;
  if (env.DRIVE_CACHE_DIR) return join(env.DRIVE_CACHE_DIR, "sync");
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "drive", "sync");
}

/** The state file of a key under `base`. */
export function syncStateFile(base: string, key: SyncKey): string {
  return indexFile(base, key);
}

const FORMAT = "sync-1";
/** Ids are reserved this many at a time, on disk before any is handed out: a crash never reuses one. */
const ID_BLOCK = 4096;

export const openSyncState: OpenSyncState = async (key, dir) => {
  const base = dir === undefined ? syncBaseDir() : dir;
  const temp = base === null ? await mkdtemp(join(tmpdir(), "drive-sync-")) : null;
  const folder = temp ?? base!;
  const cleanup = async () => {
    if (temp) await rm(temp, { recursive: true, force: true });
  };
  await mkdir(folder, { recursive: true, mode: 0o700 });
  const file = syncStateFile(folder, key);
  let unlock: () => Promise<void>;
  try {
    unlock = await takeLock(`${file}-sync.lock`, key.localRoot);
  } catch (err) {
    await cleanup();
    throw err;
  }
  let env: RootDatabase;
  try {
    await checkHeader(file);
    env = open({ path: file, maxDbs: 5, overlappingSync: false, noSync: false, noMetaSync: false, useWritemap: false, compression: false, cache: false });
  } catch (err) {
    await unlock();
    await cleanup();
    throw corrupt(file, err);
  }
  const state = new LmdbSyncState(env, file, async () => {
    await unlock();
    await cleanup();
  });
  try {
    await state.load(key);
  } catch (err) {
    await state.close();
    throw err instanceof CliError ? err : corrupt(file, err);
  }
  return state;
};

/**
 * LMDB trusts its file: one that is not an LMDB file (overwritten, torn
 * by a copy) crashes the process on open rather than failing. Its first
 * meta page must carry LMDB's magic number.
 */
async function checkHeader(file: string): Promise<void> {
  const fh = await fsOpen(file, "r").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return null;
    throw err;
  });
  if (!fh) return;
  try {
    const head = Buffer.alloc(MAGIC_AT + 4);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    if (bytesRead === 0) return; // created, never written: LMDB starts it afresh
    if (bytesRead < head.length || head.readUInt32LE(MAGIC_AT) !== LMDB_MAGIC) throw new Error("not an LMDB file");
  } finally {
    await fh.close();
  }
}

const MAGIC_AT = 24;
const LMDB_MAGIC = 0xbeefc0de;

function corrupt(file: string, err: unknown): CliError {
  return new CliError("internal", `${file}: the sync state cannot be read (${(err as Error).message}); remove it (and ${file}-lock) to start over: the next sync then compares both sides afresh`, { cause: err });
}

type Codec<N> = { encode: (path: string, n: N) => NodeTuple; decode: (key: Buffer, v: NodeTuple) => [string, N] };
const syncedCodec: Codec<SyncedNode> = { encode: encodeSynced, decode: decodeSynced };
const remoteCodec: Codec<RemoteNode> = { encode: encodeRemote, decode: decodeRemote };

class LmdbSyncState implements SyncState {
  readonly synced = new Map<string, SyncedNode>();
  readonly remote = new Map<string, RemoteNode>();
  cursor = "";
  private readonly values = new Map<string, string>();
  private readonly syncedDb: Database<NodeTuple, Buffer>;
  private readonly remoteDb: Database<NodeTuple, Buffer>;
  private readonly valuesDb: Database<string, string>;
  private readonly meta: Database<string, string>;
  private nextId = 0;
  private reservedEnd = 0;
  private closed = false;

  constructor(
    private readonly env: RootDatabase,
    readonly file: string,
    private readonly release: () => Promise<void>,
  ) {
    this.syncedDb = env.openDB<NodeTuple, Buffer>({ name: "synced", keyEncoding: "binary" });
    this.remoteDb = env.openDB<NodeTuple, Buffer>({ name: "remote", keyEncoding: "binary" });
    this.valuesDb = env.openDB<string, string>({ name: "values", encoding: "string" });
    this.meta = env.openDB<string, string>({ name: "meta", encoding: "string" });
  }

  async load(key: SyncKey): Promise<void> {
    const format = this.meta.get("format");
    if (format === undefined) {
      await this.meta.transaction(() => {
        this.meta.put("format", FORMAT);
        this.meta.put("key", JSON.stringify(key));
      });
      await this.env.flushed;
    } else if (format !== FORMAT) {
      throw new CliError("internal", `${this.file}: a sync state of format ${format}, not ${FORMAT} (written by another version of drive); remove it to start over`);
    }
    for (const { key: k, value } of this.syncedDb.getRange()) this.synced.set(...syncedCodec.decode(k, value));
    for (const { key: k, value } of this.remoteDb.getRange()) this.remote.set(...remoteCodec.decode(k, value));
    for (const { key: k, value } of this.valuesDb.getRange()) this.values.set(k, value);
    this.cursor = this.meta.get("cursor") ?? "";
    this.nextId = this.reservedEnd = Number(this.meta.get("ids") ?? "0");
    if (!Number.isSafeInteger(this.nextId) || this.nextId < 0) throw new Error(`bad id reservation ${this.meta.get("ids")}`);
  }

  editSynced(steps: TreeStep<SyncedNode>[]): Promise<void> {
    return this.edit(this.synced, this.syncedDb, syncedCodec, steps, false, () => undefined);
  }

  editRemote(steps: TreeStep<RemoteNode>[], cursor: string, opts: { replace?: boolean } = {}): Promise<void> {
    const before = this.cursor;
    this.cursor = cursor;
    return this.edit(this.remote, this.remoteDb, remoteCodec, steps, opts.replace === true, () => this.meta.put("cursor", cursor)).catch((err) => {
      this.cursor = before;
      throw err;
    });
  }

  getValue(key: string): string | undefined {
    return this.values.get(key);
  }

  async setValue(key: string, value: string | undefined): Promise<void> {
    if (value === undefined) {
      this.values.delete(key);
      await this.valuesDb.remove(key);
    } else {
      this.values.set(key, value);
      await this.valuesDb.put(key, value);
    }
    await this.env.flushed;
  }

  newId(): string {
    if (this.nextId >= this.reservedEnd) {
      const end = this.reservedEnd + ID_BLOCK;
      this.meta.putSync("ids", String(end)); // a synchronous, synced commit: newId() is synchronous
      this.reservedEnd = end;
    }
    return `n${(this.nextId++).toString(36)}`;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.env.flushed;
      await this.env.close();
    } finally {
      await this.release();
    }
  }

  /**
   * Applies steps to the tree in memory at once (so later calls see them)
   * and writes the paths they touched, as they are now, in one
   * transaction; if that fails the tree is put back.
   */
  private async edit<N>(tree: Map<string, N>, db: Database<NodeTuple, Buffer>, codec: Codec<N>, steps: TreeStep<N & SyncedNode>[] | TreeStep<N & RemoteNode>[], replace: boolean, extra: () => void): Promise<void> {
    if (this.closed) throw new CliError("internal", `${this.file}: the sync state is closed`);
    let before: Map<string, N | undefined>;
    if (replace) {
      before = new Map(tree);
      tree.clear();
      applySteps(tree, steps);
      for (const p of tree.keys()) if (!before.has(p)) before.set(p, undefined);
    } else {
      before = applyTracked(tree, steps);
    }
    // Rows are taken now: lmdb runs the callback later, and later edits must not leak into this one.
    const rows = [...before.keys()].map((p) => {
      const n = tree.get(p);
      return [keyOf(p), n === undefined ? undefined : codec.encode(p, n)] as const;
    });
    try {
      await db.transaction(() => {
        for (const [k, v] of rows) {
          if (v === undefined) db.remove(k);
          else db.put(k, v);
        }
        extra();
      });
      await this.env.flushed;
    } catch (err) {
      for (const [p, n] of before) {
        if (n === undefined) tree.delete(p);
        else tree.set(p, n);
      }
      throw new CliError("internal", `${this.file}: cannot write the sync state: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** applySteps, returning what each path it touched held before (undefined: nothing). */
function applyTracked<N>(tree: Map<string, N>, steps: ReadonlyArray<TreeStep<N & SyncedNode> | TreeStep<N & RemoteNode>>): Map<string, N | undefined> {
  const before = new Map<string, N | undefined>();
  const touch = (p: string) => {
    if (!before.has(p)) before.set(p, tree.get(p));
  };
  for (const s of steps) {
    if (s.type !== "move") touch(s.path);
    else if (s.from !== s.to && !isUnder(s.to, s.from) && !isUnder(s.from, s.to)) {
      for (const p of tree.keys()) {
        if (isUnder(p, s.to)) touch(p);
        else if (isUnder(p, s.from)) {
          touch(p);
          touch(s.to + p.slice(s.from.length));
        }
      }
    }
    applySteps(tree, [s]);
  }
  return before;
}
