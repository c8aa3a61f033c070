import type { BigIntStats, Dir, Dirent } from "node:fs";
import { lstatSync, opendirSync, readdirSync, readlinkSync } from "node:fs";
import { stat } from "node:fs/promises";
import { setImmediate as nextTurn } from "node:timers/promises";
import { checkRemotePath, MAX_PATH_BYTES } from "../../shared/rules/remote-path.js";
import { CliError } from "../errors.js";
import { comparePaths } from "./path-order.js";
import type { LocalEntry, WalkOptions } from "./types.js";

/**
 * Walks a local root and yields every file and folder under it, one entry
 * at a time, in path order (comparePaths: code point order of the whole
 * relative path, the order of LocalIndex.entries()), so a planner can merge
 * it with the index and a remote listing in one pass.
 *
 * - Every folder is yielded, empty or not, before what it holds; the root
 *   itself is not an entry. An excluded folder is neither yielded nor walked.
 * - Never follows a symlink: each is skipped with onSkip("symlink"), a
 *   symlinked subfolder too. The root itself is followed (the user named it).
 * - Names are mapped to NFC (path), keeping the disk spelling in diskPath.
 *   Two names in one folder with one NFC form collide: both are skipped,
 *   each with onSkip("collision"), and so is all under them.
 * - A name the server would refuse (remote-path.ts) skips with
 *   "unsafe_name"; a folder that cannot be read, and a FIFO, socket or
 *   device, with "unreadable". The walk goes on.
 * - A skipped path is unknown, not absent: a --delete must not remove its
 *   remote counterpart. An unreadable folder is still yielded (it exists),
 *   and onSkip says its contents are unknown.
 *
 * Speed: synchronous opendir reads and lstat calls, in slices of at most
 * SLICE_MS between turns of the event loop. A warm lstat costs a few µs
 * done in place; through libuv's thread pool and a promise each, it cost
 * 5-10 times that (10,000 files took 0.8-1 s, now well under 250 ms).
 * Handing the thread back every few ms keeps timers, I/O and the signal
 * responsive; a cold lstat that waits on the disk blocks for one read.
 */
export async function* walk(root: string, opts: WalkOptions & WalkTuning): AsyncGenerator<LocalEntry> {
  const rootStat = await stat(root).catch((err: NodeJS.ErrnoException) => {
    throw new CliError(err.code === "ENOENT" ? "not_found" : "internal", `${root}: cannot walk it: ${err.message}`, { cause: err });
  });
  if (!rootStat.isDirectory()) throw new CliError("usage", `${root}: not a folder`);
  const ctx: Ctx = { rootArg: root, root: root.endsWith("/") ? root : root + "/", opts, pacer: new Pacer(opts.signal) };
  let count = 0;
  // Depth-first with an explicit stack: deep trees cost no nested generators.
  const stack: Frame[] = [{ items: await listFolder(ctx, "", "", true), next: 0 }];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.next >= frame.items.length) {
      stack.pop();
      continue;
    }
    if (opts.signal?.aborted) throw abortReason(opts.signal);
    const item = frame.items[frame.next++]!;
    if (item.descend) {
      stack.push({ items: await listFolder(ctx, item.entry.path, item.entry.diskPath ?? item.entry.path, false), next: 0 });
      continue;
    }
    count++;
    if ((count & 255) === 0) opts.onProgress?.(count);
    // The consumer's work between entries counts too: it runs on this turn.
    if ((count & 31) === 0 && ctx.pacer.due()) await ctx.pacer.pause();
    yield item.entry;
  }
  opts.onProgress?.(count);
}

/** The whole walk as one list, in path order. */
export async function walkAll(root: string, opts: WalkOptions & WalkTuning): Promise<LocalEntry[]> {
  const out: LocalEntry[] = [];
  for await (const e of walk(root, opts)) out.push(e);
  return out;
}

/** Kept so that callers written for the thread-pool walk still compile. */
export interface WalkTuning {
  /** Ignored: the walk no longer goes through the thread pool (see walk's "Speed"). */
  parallel?: number;
}

/** The longest stretch of synchronous file system work before the event loop gets a turn. */
const SLICE_MS = 4;
/** Dirents per opendir read: a huge folder is read a slice at a time, not in one blocking call. */
const DIR_BUFFER = 256;
const NON_ASCII = /[^\x00-\x7f]/;

interface Ctx {
  /** The root as the caller named it, for messages. */
  rootArg: string;
  /** The root with a trailing slash: children are root + diskPath, no join() per entry. */
  root: string;
  opts: WalkOptions;
  pacer: Pacer;
}

/**
 * One step of a folder's walk: an entry, or (descend) the entry of a folder
 * again, standing for what it holds. Key: the name, or name + "/" for the
 * folder's contents, so "a-b" comes before "a/z" as in path order.
 */
interface Item {
  key: string;
  entry: LocalEntry;
  descend: boolean;
}

interface Frame {
  items: Item[];
  next: number;
}

/** Keeps synchronous work in slices: due() after SLICE_MS, pause() gives the event loop a turn. */
class Pacer {
  private since = performance.now();
  constructor(private readonly signal: AbortSignal | undefined) {}
  due(): boolean {
    return performance.now() - this.since >= SLICE_MS;
  }
  async pause(): Promise<void> {
    await nextTurn();
    this.since = performance.now();
    if (this.signal?.aborted) throw abortReason(this.signal);
  }
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new Error("aborted");
}

/** One folder's children as sorted items; `path` is NFC, `diskPath` as on disk ("" for the root). */
async function listFolder(ctx: Ctx, path: string, diskPath: string, isRoot: boolean): Promise<Item[]> {
  const { opts, pacer } = ctx;
  const abs = diskPath === "" ? ctx.root : ctx.root + diskPath;
  let dirents: Dirent[];
  try {
    dirents = await readFolder(abs, pacer);
  } catch (err) {
    if (isAbort(err, opts.signal)) throw err;
    if (isRoot) throw new CliError("internal", `${ctx.rootArg}: cannot read the folder: ${(err as Error).message}`, { cause: err });
    opts.onSkip?.(path, "unreadable", (err as Error).message);
    return [];
  }
  // Names as the walk spells them: NFC, which only a non-ASCII name can change.
  let anyMapped = false;
  let anyReplacement = false;
  let unitOrder = true;
  const names: string[] = new Array(dirents.length);
  for (let i = 0; i < dirents.length; i++) {
    const name = dirents[i]!.name;
    if (NON_ASCII.test(name)) {
      const nfc = name.normalize("NFC");
      if (nfc !== name) anyMapped = true;
      if (name.includes("\uFFFD")) anyReplacement = true;
      if (SURROGATE_OR_PAST.test(nfc)) unitOrder = false;
      names[i] = nfc;
    } else names[i] = name;
  }
  // A second, raw listing only when a name may hide bytes that are not UTF-8.
  const invalid = anyReplacement ? invalidUtf8Names(abs) : null;
  // Two disk names share an NFC form only when one of them is not NFC.
  const groups = anyMapped ? collisions(dirents, names) : null;
  const prefix = path === "" ? "" : path + "/";
  const diskPrefix = diskPath === "" ? "" : diskPath + "/";
  const prefixBytes = Buffer.byteLength(prefix);
  const items: Item[] = [];
  for (let i = 0; i < dirents.length; i++) {
    const d = dirents[i]!;
    const nfc = names[i]!;
    const childPath = prefix + nfc;
    const group = groups?.get(nfc);
    if (group) {
      if (group[0] !== d) continue; // the group is decided once, at its first name
      if (group.every((g) => excluded(ctx, childPath, g.isDirectory()))) continue;
      const list = group.map((g) => JSON.stringify(g.name)).join(", ");
      for (const g of group) opts.onSkip?.(prefix + g.name, "collision", `${list} are one name in Unicode NFC form (${JSON.stringify(nfc)}): both are skipped`);
      continue;
    }
    if (excluded(ctx, childPath, d.isDirectory())) continue;
    if (invalid?.has(d.name)) {
      opts.onSkip?.(childPath, "unsafe_name", "the name is not valid UTF-8");
      continue;
    }
    const why = checkChildName(prefixBytes, nfc);
    if (why) {
      opts.onSkip?.(prefix + d.name, "unsafe_name", why);
      continue;
    }
    if (pacer.due()) await pacer.pause();
    const entry = statChild(ctx, childPath, diskPrefix + d.name, d);
    if (!entry) continue;
    items.push({ key: nfc, entry, descend: false });
    if (entry.kind === "folder") items.push({ key: nfc + "/", entry, descend: true });
  }
  items.sort(unitOrder ? byUnits : byCodePoints);
  return items;
}

/**
 * checkRemotePath(prefix + name), given that prefix ("" or a folder path
 * and "/") already passed it, as every folder the walk enters has: only the
 * new segment and the total length can fail. Checking the whole path again
 * for every entry cost more than its lstat in deep trees.
 */
function checkChildName(prefixBytes: number, name: string): string | null {
  const bytes = prefixBytes + (NON_ASCII.test(name) ? Buffer.byteLength(name) : name.length);
  if (bytes > MAX_PATH_BYTES) return `path is over ${MAX_PATH_BYTES} bytes`;
  return checkRemotePath(name);
}

// Below U+D800 UTF-16 unit order is code point order: the plain comparison is then exact.
const SURROGATE_OR_PAST = /[\ud800-\uffff]/;
const byUnits = (a: Item, b: Item): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
const byCodePoints = (a: Item, b: Item): number => comparePaths(a.key, b.key);

/** A folder's dirents, read DIR_BUFFER at a time with turns of the event loop in between. */
async function readFolder(abs: string, pacer: Pacer): Promise<Dirent[]> {
  const dir: Dir = opendirSync(abs, { bufferSize: DIR_BUFFER });
  try {
    const out: Dirent[] = [];
    for (let d = dir.readSync(); d !== null; d = dir.readSync()) {
      out.push(d);
      if ((out.length & 63) === 0 && pacer.due()) await pacer.pause();
    }
    return out;
  } finally {
    dir.closeSync();
  }
}

function isAbort(err: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true && err === abortReason(signal);
}

/** The NFC names that more than one disk name maps to, with those dirents. */
function collisions(dirents: Dirent[], names: string[]): Map<string, Dirent[]> {
  const all = new Map<string, Dirent[]>();
  for (let i = 0; i < dirents.length; i++) {
    const g = all.get(names[i]!);
    if (g) g.push(dirents[i]!);
    else all.set(names[i]!, [dirents[i]!]);
  }
  for (const [nfc, g] of all) if (g.length < 2) all.delete(nfc);
  return all;
}

function excluded(ctx: Ctx, path: string, dir: boolean): boolean {
  try {
    return ctx.opts.filter.excludes(path, dir);
  } catch {
    return false; // a name the matcher cannot take is reported by the name check
  }
}

/** The entry for one child, or undefined when it is skipped (said why) or gone. */
function statChild(ctx: Ctx, path: string, diskPath: string, d: Dirent): LocalEntry | undefined {
  const abs = ctx.root + diskPath;
  if (d.isSymbolicLink()) return skipLink(ctx, path, abs);
  let st: BigIntStats | undefined;
  try {
    st = lstatSync(abs, { bigint: true, throwIfNoEntry: false });
  } catch (err) {
    ctx.opts.onSkip?.(path, "unreadable", (err as Error).message);
    return undefined;
  }
  if (!st) return undefined; // gone since the listing
  // lstat, not the listing, decides: the name may have been replaced in between.
  if (st.isSymbolicLink()) return skipLink(ctx, path, abs);
  const isDir = st.isDirectory();
  if (!isDir && !st.isFile()) {
    ctx.opts.onSkip?.(path, "unreadable", "not a regular file or folder (a FIFO, socket or device)");
    return undefined;
  }
  if (isDir !== d.isDirectory() && excluded(ctx, path, isDir)) return undefined;
  const entry: LocalEntry = {
    path,
    kind: isDir ? "folder" : "file",
    size: isDir ? 0 : Number(st.size),
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    mode: Number(st.mode & 0o7777n),
    dev: st.dev,
    ino: st.ino,
  };
  if (diskPath !== path) entry.diskPath = diskPath;
  return entry;
}

function skipLink(ctx: Ctx, path: string, abs: string): undefined {
  let target = "?";
  try {
    target = readlinkSync(abs);
  } catch {
    // gone or unreadable: the skip is said all the same
  }
  ctx.opts.onSkip?.(path, "symlink", `a symbolic link (to ${JSON.stringify(target)}): links are not followed or stored`);
  return undefined;
}

/** Names in the folder whose bytes are not UTF-8: Node shows them with U+FFFD, and no path could name them again. */
function invalidUtf8Names(abs: string): Set<string> {
  const out = new Set<string>();
  let raw: Buffer[];
  try {
    raw = readdirSync(abs, { encoding: "buffer" });
  } catch {
    return out;
  }
  for (const b of raw) {
    const s = b.toString("utf8");
    if (!Buffer.from(s, "utf8").equals(b)) out.add(s);
  }
  return out;
}
