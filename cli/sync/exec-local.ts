import { constants } from "node:fs";
import { link, mkdir, open, rename, rmdir, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { restorableMode } from "../tree/tree-attrs.js";
import { checkAbsent, checkLocal, lstatOrNull, localStatOf, nowNs, OpSkipped, sameEntry } from "./exec-check.js";
import { flushRecords, recordSoon, type ExecContext } from "./exec-context.js";
import { effectOf } from "./plan-effects.js";
import type { LocalNode, RemoteNode, SyncOp } from "./types.js";

type LocalMkdir = Extract<SyncOp, { type: "local_mkdir" }>;
type LocalAttrs = Extract<SyncOp, { type: "local_attrs" }>;
type LocalDelete = Extract<SyncOp, { type: "local_delete" }>;
type LocalRename = Extract<SyncOp, { type: "local_move" | "conflict_copy" }>;

/** mtimeUs as seconds for utimes: half a microsecond more, so the kernel's cut lands on the microsecond asked (see write-local.ts). */
export function utimesSeconds(mtimeUs: number): number {
  return (mtimeUs + 0.5) / 1e6;
}

/** Makes the folder (and its parents, through the fence); an existing folder is the same folder. */
export async function localMkdir(ctx: ExecContext, op: LocalMkdir): Promise<void> {
  const parent = await ctx.fence.prepareParent(op.path);
  const abs = join(parent, basename(op.path));
  await mkdir(abs).catch((err: NodeJS.ErrnoException) => (err.code === "EEXIST" ? undefined : Promise.reject(err)));
  const recordedNs = nowNs();
  const st = await lstatOrNull(abs);
  if (!st?.isDirectory()) throw new OpSkipped(`${op.path}: ${st ? "something that is not a folder" : "nothing"} is where the folder goes`);
  ctx.fence.noteWritten(op.path);
  await recordSoon(ctx, { op, result: { stat: localStatOf(st, recordedNs) } }, [parent]);
}

/**
 * The remote's mode and mtime on the local file, through a descriptor
 * opened without following links: the file checked is the file changed.
 */
export async function localAttrs(ctx: ExecContext, op: LocalAttrs): Promise<void> {
  const { abs } = await checkLocal(ctx.fence, op.path, op.local, ctx.opts.signal);
  let fh: FileHandle;
  try {
    fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ELOOP") throw new OpSkipped(`${op.path} is a symbolic link now`);
    throw err;
  }
  try {
    const st = await fh.stat({ bigint: true });
    if (!sameEntry(st, op.local)) throw new OpSkipped(`${op.path} changed here since it was scanned`);
    await setAttrs(fh, op.remote);
    const recordedNs = nowNs();
    const after = await fh.stat({ bigint: true });
    await recordSoon(ctx, { op, result: { stat: localStatOf(after, recordedNs) } }, []);
  } finally {
    await fh.close();
  }
}

async function setAttrs(fh: FileHandle, remote: RemoteNode): Promise<void> {
  // Mode 0 and mtime 0 are "not known": nothing to set.
  if (remote.mode) await fh.chmod(restorableMode(remote.mode));
  if (remote.mtimeUs) await fh.utimes(utimesSeconds(remote.mtimeUs), utimesSeconds(remote.mtimeUs));
}

/**
 * A file: checked, then unlinked (the window between the two is the one
 * Node leaves: no unlinkat on a descriptor). A folder: rmdir, which
 * refuses one that is not empty: something new is inside, kept.
 */
export async function localDelete(ctx: ExecContext, op: LocalDelete): Promise<void> {
  if (!(await lstatOrNull(await ctx.fence.localPathFor(op.path)))) return recordSoon(ctx, { op, message: "already gone" }, []);
  const { abs } = await checkLocal(ctx.fence, op.path, op.local, ctx.opts.signal);
  if (op.local.kind === "folder") {
    try {
      await rmdir(abs);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOTEMPTY" || code === "EEXIST") throw new OpSkipped(`${op.path} is not empty: something new is inside; kept`);
      throw err;
    }
  } else {
    await unlink(abs);
  }
  await recordSoon(ctx, { op }, [dirname(abs)]);
}

/**
 * local_move and conflict_copy: the source must still be `local` and
 * nothing may be at the destination. A file moves by link then unlink,
 * so the destination is never replaced (link fails on an existing name);
 * a folder by rename right after a last check that the destination is
 * free: Node has no renameat2(RENAME_NOREPLACE), so a folder made at that
 * very name in the microseconds between would be replaced if empty (a
 * folder with something inside makes rename fail).
 */
export async function localRename(ctx: ExecContext, op: LocalRename): Promise<void> {
  const fromRel = op.type === "local_move" ? op.from : op.path;
  await ctx.fence.localPathFor(op.to);
  const { abs: src } = await checkLocal(ctx.fence, fromRel, op.local, ctx.opts.signal);
  const parent = await ctx.fence.prepareParent(op.to);
  const dst = join(parent, basename(op.to));
  await checkAbsent(op.to, dst);
  // A conflicted copy's record only makes Synced forget the path's stat, so it goes first: killed after the rename, the copy still
  // never reads as a rename of the path by its inode (which would move the other side's version to the copy's name).
  if (op.type === "conflict_copy") {
    await flushRecords(ctx);
    await ctx.writing;
    await ctx.state.editSynced(effectOf(op));
  }
  await moveNoReplace(op.to, src, dst, op.local);
  ctx.fence.noteWritten(op.to);
  await recordSoon(ctx, { op }, [dirname(src), parent]);
}

async function moveNoReplace(toRel: string, src: string, dst: string, local: LocalNode): Promise<void> {
  if (local.kind === "file") {
    try {
      await link(src, dst);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EEXIST") throw new OpSkipped(`${toRel} appeared here since the scan: something is in the way`);
      // A file system without hard links (FAT, some network ones): the folder's way below.
      if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "EMLINK" && code !== "EXDEV") throw err;
      return renameChecked(toRel, src, dst);
    }
    // The name linked may have been swapped since the check: then undo, and leave both as they are.
    const linked = await lstatOrNull(dst);
    if (!linked || linked.ino !== local.stat.ino || linked.dev !== local.stat.dev) {
      if (linked) await unlink(dst);
      throw new OpSkipped(`${toRel}: the source changed while it was moved`);
    }
    await unlink(src);
    return;
  }
  await renameChecked(toRel, src, dst);
}

async function renameChecked(toRel: string, src: string, dst: string): Promise<void> {
  await checkAbsent(toRel, dst);
  await rename(src, dst);
}
