/**
 * The harness of the two-way sync suites (matrix, converge, guard): a real
 * server, clients that each own a local folder and a DRIVE_CACHE_DIR (so two
 * clients on one machine are independent, as two machines would be) and
 * sync one remote folder as the same user, and the views the assertions
 * compare: a snapshot of a local tree, the server's tree, and every content
 * the server ever held.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { lstat, mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { EntryKind, type FileInfo, type Version } from "../../gen/drive/v1/types_pb.js";
import { connectDrive, type DriveClient } from "../../cli/rpc/drive-client.js";
import { MARKER_NAME } from "../../cli/sync/types.js";
import { hex } from "../../shared/rules/content-hash.js";
import { runDrive, type CliResult } from "../support/drive-cli.js";
import { BIN, startDriveServer, type TestServer } from "../support/drive-server.js";
import { startThrottleProxy, type ThrottleProxy } from "../support/throttle-proxy.js";

/** One entry of a tree: what two trees must agree on. */
export interface Entry {
  kind: "file" | "folder";
  /** Lowercase hex BLAKE3 of a file's bytes; "" for a folder. */
  hash: string;
  /** mode & 0o777 of a file; 0 for a folder (not compared) or when the server was not told. */
  mode: number;
}

/** Path (relative to the root, slash-separated) → entry. */
export type Snapshot = Map<string, Entry>;

export interface SyncClient {
  name: string;
  /** The local folder it syncs. */
  root: string;
  /** Its own DRIVE_CACHE_DIR: its sync state and index. */
  cache: string;
  /** The remote folder it syncs, "" for the remote root. */
  remote: string;
  /** Its own fault proxy in front of the server, when asked for: faults then hit this client alone. */
  proxy?: ThrottleProxy;
}

/** One op line of `drive sync --json` (cli/ui/json-printer.ts). */
export interface OpLine {
  type: "op";
  /** upload, download, remote_mkdir, local_mkdir, remote_attrs, local_attrs, remote_delete, local_delete, remote_move, local_move, conflict_copy, record, forget. */
  op: string;
  /** Relative to the sync root; a move's source. */
  path: string;
  /** A move's or a conflicted copy's destination. */
  to?: string;
  why: string;
  /** done, skipped, failed; planned under --dry-run. */
  outcome: string;
  message?: string;
}

export interface SyncRun extends CliResult {
  /** The op lines, in order. */
  ops: OpLine[];
  /** Killed by the harness (SIGKILL) before it finished. */
  killed: boolean;
}

/** When to SIGKILL a run: after `ops` op lines, or `ms` after the spawn, whichever comes first. */
export interface KillAt {
  ops?: number;
  ms?: number;
}

export interface RunOptions {
  kill?: KillAt;
  env?: NodeJS.ProcessEnv;
}

export interface SyncWorld {
  server: TestServer;
  /** The fault proxy in front of the server, when asked for (every client goes through it). */
  proxy: ThrottleProxy | null;
  /** The URL the clients are given. */
  via: string;
  /** The test's scratch folder. */
  dir: string;
  /** An RPC client straight to the server (never through the proxy), for looking. */
  rpc: DriveClient;
  client(name: string, remote: string, opts?: { proxy?: boolean }): Promise<SyncClient>;
  /** `drive --json sync ROOT REMOTE ...args` for the client, to its end (or to the kill). */
  sync(c: SyncClient, args?: string[], opts?: RunOptions): Promise<SyncRun>;
  /** `drive --json ...argv` as the client (its cache, through the proxy if any), killable as sync is. */
  run(c: SyncClient, argv: string[], opts?: RunOptions): Promise<SyncRun>;
  /** Any other drive command as the user, straight to the server, with the client's cache when given. */
  drive(args: string[], c?: SyncClient): Promise<CliResult>;
  /** The server's tree under a remote folder, paths relative to it (folders: entries and those paths imply). */
  serverTree(remote: string): Promise<Snapshot>;
  /** Every content hash the server holds or held under the remote folder: live files and every revision of every path, deleted ones too. */
  serverContentsEver(remote: string): Promise<Set<string>>;
  /** Deleted paths under the remote folder (ListFiles deleted), relative to it. */
  serverDeleted(remote: string): Promise<string[]>;
  /** Makes the remote folder as a folder entry, as a user would before syncing into it. */
  mkdirRemote(remote: string): Promise<void>;
  stop(): Promise<void>;
}

export interface WorldOptions {
  /** Put a fault proxy (test/support/throttle-proxy.ts) between the clients and the server. */
  proxy?: boolean;
  serverArgs?: string[];
  /** Extra environment for every sync run (e.g. a short DRIVE_SYNC_SETTLE_MS). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Files younger than the settle time are left for a later run; the suites
 * write and then sync at once, so they ask for no settling at all.
 */
export const SYNC_ENV: NodeJS.ProcessEnv = { DRIVE_SYNC_SETTLE_MS: "0" };

export async function startWorld(opts: WorldOptions = {}): Promise<SyncWorld> {
  const server = await startDriveServer({ args: ["--log-level", "warn", ...(opts.serverArgs ?? [])] });
  const proxy = opts.proxy ? await startThrottleProxy({ target: server.url }) : null;
  const via = proxy?.url ?? server.url;
  const dir = await mkdtemp(join(tmpdir(), "drive-sync-"));
  const rpc = connectDrive({ server: server.url, token: server.adminToken });
  const token = server.adminToken;
  const envOf = (c?: SyncClient): NodeJS.ProcessEnv => ({ ...SYNC_ENV, ...opts.env, ...(c ? { DRIVE_CACHE_DIR: c.cache } : {}) });
  const names = new Set<string>();
  const proxies: ThrottleProxy[] = [];

  const world: SyncWorld = {
    server,
    proxy,
    via,
    dir,
    rpc,
    async client(name, remote, o = {}) {
      if (names.has(name)) throw new Error(`client ${name} exists already`);
      names.add(name);
      const c: SyncClient = { name, root: join(dir, name, "root"), cache: join(dir, name, "cache"), remote };
      if (o.proxy) proxies.push((c.proxy = await startThrottleProxy({ target: server.url })));
      await mkdir(c.root, { recursive: true });
      await mkdir(c.cache, { recursive: true });
      return c;
    },
    run: (c, argv, o = {}) => runKillable(["--json", ...argv], { server: c.proxy?.url ?? via, token, env: { ...envOf(c), ...o.env } }, o.kill),
    sync: (c, args = [], o = {}) => world.run(c, ["sync", c.root, c.remote, ...args], o),
    drive: (args, c) => runDrive(args, { server: server.url, token, cwd: dir, env: envOf(c) }),
    serverTree: (remote) => serverTree(rpc, remote),
    serverContentsEver: (remote) => serverContentsEver(rpc, remote),
    async serverDeleted(remote) {
      const prefix = remote ? `${remote}/` : "";
      const out: string[] = [];
      for await (const f of listAll(rpc, prefix, true)) out.push(f.path.slice(prefix.length));
      return out.sort();
    },
    async mkdirRemote(remote) {
      const r = await rpc.tree.beginPuts({ items: [{ path: remote, kind: EntryKind.FOLDER }] });
      const res = r.results[0]?.result;
      if (res?.case === "error") throw new Error(`mkdir ${remote} on the server: ${res.value.message}`);
    },
    async stop() {
      rpc.close();
      for (const p of proxies) await p.close();
      await proxy?.close();
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return world;
}

/**
 * Runs the CLI as runDrive does (same environment), with a kill switch:
 * SIGKILL after so many op lines or so many ms after the spawn, whichever
 * comes first. Spawned here because a kill may come before any output.
 */
function runKillable(args: string[], opts: { server: string; token: string; env: NodeJS.ProcessEnv }, kill?: KillAt): Promise<SyncRun> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, DRIVE_CONFIG: "/nonexistent/drive-test-config.json", DRIVE_SERVER: opts.server, DRIVE_TOKEN: opts.token, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let killed = false;
  const killNow = () => {
    if (killed || child.exitCode !== null || child.signalCode !== null) return;
    killed = true;
    child.kill("SIGKILL");
  };
  const timer = kill?.ms !== undefined ? setTimeout(killNow, kill.ms) : undefined;
  let stdout = "";
  let stderr = "";
  let pending = "";
  let ops = 0;
  child.stdout!.on("data", (c: Buffer) => {
    stdout += c;
    pending += c;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (kill?.ops !== undefined && isOpLine(line) && ++ops >= kill.ops) killNow();
    }
  });
  child.stderr!.on("data", (c) => (stderr += c));
  return new Promise((resolve) => {
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      const lines = stdout
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .flatMap((l) => {
          try {
            return [JSON.parse(l) as Record<string, any>];
          } catch {
            return []; // a line cut by the kill
          }
        });
      const ops = lines.filter((l): l is OpLine => l.type === "op");
      resolve({ code, signal, stdout, stderr, lines, summary: lines.filter((l) => l.type === "summary").at(-1), ops, killed });
    });
  });
}

function isOpLine(line: string): boolean {
  try {
    return (JSON.parse(line) as { type?: string }).type === "op";
  } catch {
    return false;
  }
}

export function blake3Hex(data: Buffer | string): string {
  return new Blake3Hasher().update(Buffer.from(data)).digest("hex");
}

/** A local tree: every file and folder under root, the marker left out (it is never synced). */
export async function snapshot(root: string): Promise<Snapshot> {
  const out: Snapshot = new Map();
  const walk = async (rel: string) => {
    const entries = await readdir(join(root, rel), { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (!rel && e.name === MARKER_NAME) continue;
      const st = await lstat(join(root, p));
      if (st.isDirectory()) {
        out.set(p, { kind: "folder", hash: "", mode: 0 });
        await walk(p);
      } else if (st.isFile()) {
        out.set(p, { kind: "file", hash: blake3Hex(await readFile(join(root, p))), mode: st.mode & 0o777 });
      } else out.set(p, { kind: "file", hash: `(${st.isSymbolicLink() ? "symlink" : "special"})`, mode: 0 });
    }
  };
  await walk("");
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

async function* listAll(rpc: DriveClient, prefix: string, deleted = false): AsyncGenerator<FileInfo> {
  let pageToken = "";
  do {
    const page = await rpc.files.listFiles({ prefix, pageToken, deleted });
    yield* page.files;
    pageToken = page.nextPageToken;
  } while (pageToken);
}

async function serverTree(rpc: DriveClient, remote: string): Promise<Snapshot> {
  const prefix = remote ? `${remote}/` : "";
  const out: Snapshot = new Map();
  const folder = (p: string) => out.set(p, { kind: "folder", hash: "", mode: 0 });
  for await (const f of listAll(rpc, prefix)) {
    const rel = f.path.slice(prefix.length);
    if (!rel) continue;
    // Folders that paths pass through are folders here as on disk.
    const parts = rel.split("/");
    for (let i = 1; i < parts.length; i++) folder(parts.slice(0, i).join("/"));
    if (f.kind === EntryKind.FOLDER) folder(rel);
    else out.set(rel, { kind: "file", hash: hex(f.contentHash), mode: f.mode & 0o777 });
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

async function serverContentsEver(rpc: DriveClient, remote: string): Promise<Set<string>> {
  const prefix = remote ? `${remote}/` : "";
  const paths = new Set<string>();
  for await (const f of listAll(rpc, prefix)) if (f.kind !== EntryKind.FOLDER) paths.add(f.path);
  for await (const f of listAll(rpc, prefix, true)) paths.add(f.path);
  const out = new Set<string>();
  for (const path of paths) {
    let pageToken = "";
    do {
      const page = await rpc.files.listVersions({ path, pageToken });
      for (const v of page.versions) if (!v.deleted && v.contentHash.length) out.add(hex(v.contentHash));
      pageToken = page.nextPageToken;
    } while (pageToken);
  }
  return out;
}

/**
 * Paths whose history has two live revisions in a row with the same
 * content, mode and mtime: an upload that changed nothing, as a re-run
 * after a crash must never make.
 */
export async function repeatedRevisions(rpc: DriveClient, remote: string): Promise<string[]> {
  const prefix = remote ? `${remote}/` : "";
  const paths = new Set<string>();
  for await (const f of listAll(rpc, prefix)) if (f.kind !== EntryKind.FOLDER) paths.add(f.path);
  for await (const f of listAll(rpc, prefix, true)) paths.add(f.path);
  const out: string[] = [];
  for (const path of paths) {
    const versions: Version[] = [];
    let pageToken = "";
    do {
      const page = await rpc.files.listVersions({ path, pageToken });
      versions.push(...page.versions);
      pageToken = page.nextPageToken;
    } while (pageToken);
    const key = (v: Version) => `${v.deleted}:${hex(v.contentHash)}:${v.mode & 0o777}:${v.mtime?.seconds}:${v.mtime?.nanos}`;
    for (let i = 1; i < versions.length; i++) {
      const [newer, older] = [versions[i - 1]!, versions[i]!];
      if (!newer.deleted && !older.deleted && key(newer) === key(older)) out.push(`${path.slice(prefix.length)} r${older.revision} = r${newer.revision}`);
    }
  }
  return out.sort();
}

/** Two snapshots as sorted lines, for a readable diff in expect(...).toEqual. */
export function lines(s: Snapshot, opts: { modes?: boolean } = {}): string[] {
  return [...s].map(([p, e]) => (e.kind === "folder" ? `${p}/` : `${p} ${e.hash.slice(0, 12)}${opts.modes ? ` ${e.mode.toString(8)}` : ""}`));
}

/** The paths that differ between two snapshots, with what each side has: [] when equal. */
export function diff(a: Snapshot, b: Snapshot, opts: { modes?: boolean } = {}): string[] {
  const out: string[] = [];
  for (const p of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(p);
    const y = b.get(p);
    const same = x && y && x.kind === y.kind && x.hash === y.hash && (!opts.modes || x.kind === "folder" || !x.mode || !y.mode || x.mode === y.mode);
    if (!same) out.push(`${p}: ${show(x)} vs ${show(y)}`);
  }
  return out.sort();
}

const show = (e?: Entry) => (!e ? "absent" : e.kind === "folder" ? "folder" : `file ${e.hash.slice(0, 12)} ${e.mode.toString(8)}`);

/** `name (conflicted copy host 2026-12-02 101500).ext` → the sibling path it was copied beside, else null. */
export function conflictSibling(path: string): string | null {
  const m = /^(.*) \(conflicted copy [^)]*\d{4}-\d{2}-\d{2} \d{6}\)(\.[^./]*)?$/.exec(path);
  return m ? m[1]! + (m[2] ?? "") : null;
}

export const isConflictCopy = (path: string) => conflictSibling(path) !== null;

/**
 * Every content a client ever let sync see: the hashes of its files at the
 * start of each sync run. What the convergence check demands survives.
 */
export class ContentLedger {
  readonly #seen = new Map<string, string>();

  /** Records every file of the snapshot; `who` says where it was first seen, for the failure. */
  note(snap: Snapshot, who: string): void {
    // A download's temporary (a killed run leaves one) is not anyone's content; a snapshot still shows it, so one left at the end fails the tree check.
    for (const [p, e] of snap) if (e.kind === "file" && !p.endsWith(".drive-partial") && !this.#seen.has(e.hash)) this.#seen.set(e.hash, `${who}:${p}`);
  }

  /** Contents seen that none of `kept` holds, as "hash (first seen at)". */
  missing(kept: Set<string>): string[] {
    return [...this.#seen].filter(([h]) => !kept.has(h)).map(([h, at]) => `${h.slice(0, 12)} (first seen at ${at})`);
  }

  get size(): number {
    return this.#seen.size;
  }
}

/** mulberry32: a small seeded PRNG, so a seed replays the same run. */
export class Rng {
  #s: number;
  constructor(readonly seed: number) {
    this.#s = seed >>> 0;
  }
  /** [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    if (!xs.length) throw new Error("pick from nothing");
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** Printable bytes, different on every call. */
  text(tag: string): string {
    return `${tag} ${this.int(0, 2 ** 31)}\n`.repeat(this.int(1, 40));
  }
}

/** A stable short id of a string, for remote folder names. */
export const shortId = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 8);
