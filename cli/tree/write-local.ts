import { lstat, open, rename, utimes, chmod, unlink } from "node:fs/promises";
import type { FileInfo } from "../../gen/drive/v1/types_pb.js";
import type { LocalEntry } from "../local/types.js";
import { createPartial, partialName, takeLeftover } from "../transfer/pull/partial-file.js";
import { microsOf, restorableMode } from "./tree-attrs.js";

/** The mode a pulled file gets when the writer did not say: what a new file gets here. */
function defaultMode(): number {
  return 0o666 & ~process.umask();
}

/**
 * The remote's mtime as seconds for utimes; null when unset. utimes takes
 * a double and the kernel gets whole microseconds, cut, not rounded: at
 * 1.7e9 s a double holds about a quarter of a microsecond, so x.257695 may
 * arrive as x.257694999 and land a microsecond early. Half a microsecond
 * more lands it on the microsecond asked for, every time.
 */
function mtimeSeconds(info: FileInfo): number | null {
  const us = microsOf(info.mtime);
  return us === null ? null : (Number(us) + 0.5) / 1e6;
}

/**
 * Writes verified bytes to `dest` atomically: a fresh temporary file beside
 * it (partial-file.ts: O_EXCL, O_NOFOLLOW, ours alone), the remote's mode
 * and mtime set on it, then renamed over dest. A leftover of an interrupted
 * run under the same name is removed first. The folder is not fsynced per
 * file (a tree syncs nothing per file: a kill -9 loses no page cache, and a
 * power cut at worst loses files the next pull fetches again).
 */
export async function writeAtomically(dest: string, bytes: Buffer, info: FileInfo, beforeRename?: () => Promise<unknown>): Promise<void> {
  const temp = partialName(dest, Buffer.from(info.contentHash).toString("hex"));
  const left = await takeLeftover(temp);
  await left?.fh.close();
  const out = await createPartial(temp);
  try {
    if (bytes.length) await out.fh.write(bytes, 0, bytes.length, 0);
    await out.fh.chmod(info.mode ? restorableMode(info.mode) : defaultMode());
    const t = mtimeSeconds(info);
    if (t !== null) await out.fh.utimes(t, t);
  } finally {
    await out.fh.close();
  }
  try {
    await out.checkStillOurs();
    await beforeRename?.();
    await rename(temp, dest);
  } catch (err) {
    // A refused write (the fence, a folder in the way) leaves nothing behind; the temp file is ours (checked above).
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}

/** After a large pull's rename (pullFile writes 0600 and now's mtime): the remote's mode and mtime. */
export async function restoreAttrs(dest: string, info: FileInfo): Promise<void> {
  await chmod(dest, info.mode ? restorableMode(info.mode) : defaultMode());
  const t = mtimeSeconds(info);
  if (t !== null) await utimes(dest, t, t);
}

/** The disk entry of a file just written, for the index. */
export async function diskEntry(path: string, abs: string): Promise<LocalEntry> {
  const st = await lstat(abs, { bigint: true });
  return { path, kind: st.isDirectory() ? "folder" : "file", size: Number(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, mode: Number(st.mode & 0o7777n), dev: st.dev, ino: st.ino };
}

/** Syncs a folder's entries once (after a batch of renames), where the filesystem allows it. */
export async function syncFolder(dir: string): Promise<void> {
  const d = await open(dir, "r").catch(() => null);
  if (!d) return;
  await d.sync().catch(() => undefined);
  await d.close();
}
