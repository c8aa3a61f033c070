import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { ContentHashKind, type FileInfo } from "../../gen/drive/v1/types_pb.js";
import type { IndexEntry, LocalEntry, PathFilter } from "../local/types.js";

/** Files of at most this many bytes go through TreeService batches (tree.proto, small_file_max). */
export const SMALL_FILE_MAX = 8 * 1024 * 1024;

/**
 * Nanoseconds to the nearest microsecond. Nearest, not floor: utimes takes
 * seconds as a double, so a pulled file's mtime lands within a fraction of
 * a microsecond of what was asked, on either side of it; rounding gives the
 * same microsecond back.
 */
export function microsOfNs(ns: bigint): bigint {
  return ns >= 0n ? (ns + 500n) / 1000n : -((-ns + 500n) / 1000n);
}

/** A Timestamp kept to the microsecond, from nanoseconds since the epoch. */
export function timestampOfNs(ns: bigint): Timestamp {
  const us = microsOfNs(ns);
  let seconds = us / 1_000_000n;
  let micros = us % 1_000_000n;
  if (micros < 0n) {
    micros += 1_000_000n;
    seconds -= 1n;
  }
  const ts = timestampFromMs(0);
  ts.seconds = seconds;
  ts.nanos = Number(micros) * 1000;
  return ts;
}

/** Microseconds since the epoch of a Timestamp, or null when unset. */
export function microsOf(ts: Timestamp | undefined): bigint | null {
  if (!ts) return null;
  return ts.seconds * 1_000_000n + BigInt(Math.floor(ts.nanos / 1000));
}

/** What a pull restores of a remote mode: the permission bits, never setuid, setgid or sticky from a server. */
export function restorableMode(mode: number): number {
  return mode & 0o777;
}

/** The remote holds this local file's attributes already (mtime to the microsecond, mode). */
export function sameAttrsForPush(local: LocalEntry, remote: FileInfo): boolean {
  return remote.mode === local.mode && microsOf(remote.mtime) === microsOfNs(local.mtimeNs);
}

/** The local file shows the remote's attributes, as far as a pull restores them; unset remote ones ask nothing. */
export function sameAttrsForPull(local: Pick<LocalEntry, "mode" | "mtimeNs">, remote: FileInfo): boolean {
  const us = microsOf(remote.mtime);
  if (us !== null && us !== microsOfNs(local.mtimeNs)) return false;
  return remote.mode === 0 || restorableMode(remote.mode) === (local.mode & 0o777);
}

/** The index's hash is this remote content: same definition and same bytes. */
export function sameContent(hash: Buffer, kind: 1 | 2, remote: FileInfo): boolean {
  const remoteKind = remote.contentHashKind === ContentHashKind.CHUNK_LIST ? 2 : 1;
  return kind === remoteKind && Buffer.from(remote.contentHash).equals(hash);
}

/** True when a path, or a folder it lies in, is filtered out. */
export function filteredOut(filter: PathFilter, path: string, kind: "file" | "folder"): boolean {
  const segs = path.split("/");
  for (let i = 1; i < segs.length; i++) if (filter.excludes(segs.slice(0, i).join("/"), true)) return true;
  return filter.excludes(path, kind === "folder");
}

/** At or under one of these paths; undefined means everything (the watch's `only`), an empty list nothing. */
export function within(only: readonly string[] | undefined, path: string): boolean {
  return !only || only.some((o) => o === "" || path === o || path.startsWith(o + "/"));
}

export type MaxDelete = { percent: number } | { count: number };

/** How many deletes the guard allows in a target of `total` entries. */
export function deleteAllowance(max: MaxDelete, total: number): number {
  return "count" in max ? max.count : Math.floor((total * max.percent) / 100);
}

/** The --delete guard's refusal, or null when the deletes pass it. */
export function guardMessage(max: MaxDelete, deletes: number, total: number, side: "remote" | "local"): string | null {
  const allowed = deleteAllowance(max, total);
  if (deletes <= allowed) return null;
  const limit = "count" in max ? `--max-delete ${max.count}` : `--max-delete ${max.percent}% (${allowed} of the ${total} entries there)`;
  return `refusing to delete ${deletes} of the ${total} ${side} entries: more than ${limit}; nothing was changed. Check the source and target, or raise --max-delete (a count, or a percentage like 100%)`;
}

export function indexEntryOf(disk: LocalEntry, contentHash: Buffer, hashKind: 1 | 2, revision: number): IndexEntry {
  return {
    path: disk.path,
    kind: disk.kind,
    size: disk.size,
    mtimeNs: disk.mtimeNs,
    ctimeNs: disk.ctimeNs,
    mode: disk.mode,
    dev: disk.dev,
    ino: disk.ino,
    contentHash,
    hashKind,
    revision,
  };
}
