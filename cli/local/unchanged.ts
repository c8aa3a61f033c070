import type { IndexEntry, IsUnchanged, LocalEntry } from "./types.js";

/**
 * Without reading a byte: the disk entry is what the index recorded when
 * its kind, size, mtime, ctime, inode, device and mode all match. ctime
 * matters because no user can set it (`touch -d` restores an mtime, not a
 * ctime), inode and device because a file replaced by rename is another
 * file even with the same times.
 *
 * Racy entries are never unchanged: when the recorded mtime or ctime lies
 * within one timestamp tick of the moment the stat was taken (recordedNs), a
 * later write in that same tick would leave every field as recorded. The
 * tick is taken as 100 ms, or 2 s on a file system that keeps whole seconds
 * (FAT, ext3, some network file systems). Such a file is read again once;
 * recorded again after it settled, it is trusted from then on.
 */
export const isUnchanged: IsUnchanged = (disk: LocalEntry, recorded: IndexEntry | undefined): boolean => {
  if (!recorded) return false;
  const same =
    disk.kind === recorded.kind &&
    disk.size === recorded.size &&
    disk.mtimeNs === recorded.mtimeNs &&
    disk.ctimeNs === recorded.ctimeNs &&
    disk.ino === recorded.ino &&
    disk.dev === recorded.dev &&
    disk.mode === recorded.mode;
  return same && !isRacy(recorded);
};

const FINE_TICK_NS = 100_000_000n;
const COARSE_TICK_NS = 2_000_000_000n;
const SECOND_NS = 1_000_000_000n;

/** True when the entry's times are too close to when they were read to prove a later write would change them. */
export function isRacy(e: Pick<IndexEntry, "mtimeNs" | "ctimeNs" | "recordedNs">): boolean {
  if (e.recordedNs === undefined) return false;
  const coarse = e.mtimeNs % SECOND_NS === 0n && e.ctimeNs % SECOND_NS === 0n;
  const since = e.recordedNs - (coarse ? COARSE_TICK_NS : FINE_TICK_NS);
  return e.mtimeNs >= since || e.ctimeNs >= since;
}
