import type { BigIntStats } from "node:fs";
import { lstat } from "node:fs/promises";
import { isRacy } from "../local/unchanged.js";
import { scanFile } from "../transfer/scan-file.js";
import type { Fence } from "../local/fence.js";
import type { LocalNode, LocalStat } from "./types.js";

/**
 * The executor's local checks: is the entry still exactly what the plan
 * saw? A failed check is OpSkipped, never an error: the next round plans
 * again from what is there.
 */
export class OpSkipped extends Error {
  override readonly name = "OpSkipped";
}

/** The ns-since-epoch clock the stat fields are compared against (unchanged.ts's racy rule). */
export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

export function localStatOf(st: BigIntStats, recordedNs: bigint): LocalStat {
  return { dev: st.dev, ino: st.ino, size: Number(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, mode: Number(st.mode & 0o7777n), recordedNs };
}

/** lstat that answers null when nothing is there (or a part of the path is not a folder). */
export async function lstatOrNull(abs: string): Promise<BigIntStats | null> {
  try {
    return await lstat(abs, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    throw err;
  }
}

/**
 * Whether a disk entry is the node the plan saw. A file: every stat field
 * (the fields unchanged.ts trusts). A folder: its identity alone, since
 * its times move whenever something inside it changes, moves of this same
 * plan included.
 */
export function sameEntry(st: BigIntStats, local: LocalNode): boolean {
  const s = local.stat;
  if (local.kind === "folder") return st.isDirectory() && st.dev === s.dev && st.ino === s.ino;
  return (
    st.isFile() &&
    st.dev === s.dev &&
    st.ino === s.ino &&
    Number(st.size) === s.size &&
    st.mtimeNs === s.mtimeNs &&
    st.ctimeNs === s.ctimeNs &&
    Number(st.mode & 0o7777n) === s.mode
  );
}

/** What to say when the entry at rel is not the plan's. */
function changedMessage(rel: string, st: BigIntStats | null): string {
  return st ? `${rel} changed here since it was scanned` : `${rel} is gone since it was scanned`;
}

/**
 * The entry at rel must still be `local`; returns its absolute path and
 * stat. Every folder above it must be a real folder under the root (the
 * fence), since the caller is about to change it.
 */
export async function checkLocal(fence: Fence, rel: string, local: LocalNode, signal: AbortSignal): Promise<{ abs: string; st: BigIntStats }> {
  const abs = await fence.localPathFor(rel);
  const st = await checkAt(rel, abs, local, signal);
  await fence.verifyParents(rel);
  return { abs, st };
}

/**
 * The entry at abs is `local`. A file whose scan was racy (its times
 * within a tick of the scan: a write in that tick leaves the stat as it
 * was) is read again and must hash to local.hash, since the caller is
 * about to replace, delete or vouch for it.
 */
async function checkAt(rel: string, abs: string, local: LocalNode, signal: AbortSignal): Promise<BigIntStats> {
  const st = await lstatOrNull(abs);
  if (!st || !sameEntry(st, local)) throw new OpSkipped(changedMessage(rel, st));
  if (local.kind === "file" && isRacy(local.stat)) {
    const scan = await scanFile(abs, { signal }).catch((err) => {
      if (signal.aborted) throw err;
      return null;
    });
    if (!scan || scan.contentHash.toString("hex") !== local.hash) throw new OpSkipped(`${rel} changed here since it was scanned (its content differs)`);
  }
  return st;
}

/** Nothing may be at abs (the plan's `replaces: null`, a move's destination). */
export async function checkAbsent(rel: string, abs: string): Promise<void> {
  const st = await lstatOrNull(abs);
  if (st) throw new OpSkipped(`${rel} appeared here since the scan: ${st.isDirectory() ? "a folder" : "a file"} is in the way`);
}

/** `replaces`: the file the plan saw at rel, or nothing; abs is its path (in a pinned folder, right before a rename). */
export async function checkReplaces(rel: string, abs: string, replaces: LocalNode | null, signal: AbortSignal): Promise<void> {
  if (replaces) await checkAt(rel, abs, replaces, signal);
  else await checkAbsent(rel, abs);
}
