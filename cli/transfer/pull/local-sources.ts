import { constants, type Dirent } from "node:fs";
import { lstat, open, opendir, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { RemoteFile } from "./download-list.js";

/** A local file a pull may take chunks from, open for reading since it was scanned. */
export interface LocalSource {
  path: string;
  fh: FileHandle;
  /** Size, mtime and inode when it was opened; a read that finds them changed takes nothing from it. */
  size: number;
  mtimeMs: number;
  ino: number;
  dev: number;
  /** Set once a read found the file changed: its chunks are fetched from then on. */
  changed: boolean;
}

/** Where a wanted chunk sits in a local source. */
export interface LocalRef {
  source: LocalSource;
  offset: number;
}

export interface CandidateLimits {
  /** Most files scanned besides the destination. Default 8. */
  maxFiles: number;
  /** Most bytes scanned in all, as a multiple of the remote file's size. Default 4. */
  budgetFactor: number;
  /** Directory entries looked at, at most: a folder of a million files costs no more than one of a thousand. */
  maxEntries: number;
}

const DEFAULTS: CandidateLimits = { maxFiles: 8, budgetFactor: 4, maxEntries: 1000 };

/** The temporary files of pulls, ours or another's: never a source by name (a leftover of ours is opened apart). */
export const PARTIAL_SUFFIX = ".drive-partial";

/**
 * The files a pull into `dest` scans for chunks it would otherwise fetch:
 * the destination itself first (the old version), then other regular
 * files in its folder, closest in size to the remote file first, at most
 * `maxFiles` of them and `budgetFactor` × the remote size in all. Only
 * regular files: no symlinks (they lead out of the folder), no FIFOs or
 * devices (a read could block or have effects), no temporary files, and
 * none smaller than the smallest wanted chunk.
 */
export async function candidateSources(dest: string, remoteSize: number, smallestChunk: number, limits: Partial<CandidateLimits> = {}): Promise<string[]> {
  const { maxFiles, budgetFactor, maxEntries } = { ...DEFAULTS, ...limits };
  const budget = budgetFactor * remoteSize;
  const fits = (size: number) => size >= smallestChunk && size > 0;
  const picked: string[] = [];
  let spent = 0;
  const own = await lstat(dest).catch(() => null);
  if (own?.isFile() && fits(own.size) && own.size <= budget) {
    picked.push(dest);
    spent += own.size;
  }
  const others: Array<{ path: string; size: number }> = [];
  const dir = await opendir(dirname(dest)).catch(() => null);
  if (dir) {
    let seen = 0;
    try {
      for await (const entry of dir as AsyncIterable<Dirent>) {
        if (++seen > maxEntries) break;
        if (!entry.isFile() || entry.name === basename(dest) || entry.name.endsWith(PARTIAL_SUFFIX)) continue;
        const path = join(dirname(dest), entry.name);
        const st = await lstat(path).catch(() => null);
        if (st?.isFile() && fits(st.size)) others.push({ path, size: st.size });
      }
    } finally {
      await dir.close().catch(() => undefined); // the iterator closes it when it runs to the end
    }
  }
  others.sort((a, b) => Math.abs(a.size - remoteSize) - Math.abs(b.size - remoteSize) || a.path.localeCompare(b.path));
  for (const o of others) {
    if (picked.length >= maxFiles + (picked[0] === dest ? 1 : 0)) break;
    if (spent + o.size > budget) continue;
    picked.push(o.path);
    spent += o.size;
  }
  return picked;
}

/**
 * Opens a source for reading without following a symlink and without
 * blocking on a FIFO swapped in since it was listed; null when it cannot be
 * read or is no longer a regular file. A source is only ever read, and
 * only bytes that hash right are taken from it.
 */
export async function openSource(path: string): Promise<LocalSource | null> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => null);
  if (!fh) return null;
  const st = await fh.stat().catch(() => null);
  if (!st?.isFile()) {
    await fh.close();
    return null;
  }
  return { path, fh, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, dev: st.dev, changed: false };
}

/** Whether a source still looks as it did when it was opened and scanned. */
export async function unchanged(source: LocalSource): Promise<boolean> {
  const st = await source.fh.stat().catch(() => null);
  return !!st && st.size === source.size && st.mtimeMs === source.mtimeMs && st.ino === source.ino && st.dev === source.dev;
}

/** The destination and its neighbours, open for reading (see candidateSources). */
export async function openCandidates(dest: string, file: Pick<RemoteFile, "size" | "chunks">): Promise<LocalSource[]> {
  const smallest = Math.min(...file.chunks.map((c) => c.size));
  const opened: LocalSource[] = [];
  for (const path of await candidateSources(dest, file.size, smallest)) {
    const source = await openSource(path);
    if (source) opened.push(source);
  }
  return opened;
}
