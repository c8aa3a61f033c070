import type { OpWhy, SyncHalt, SyncOpType, SyncState } from "./types.js";

/**
 * The named values a run leaves in the state for `drive status`: JSON, so
 * a newer drive reads an older one's and an unreadable one reads as absent.
 */
export const VALUES = {
  /** SyncHalt: why the last run stopped before doing anything; absent once a run gets through. */
  halt: "halt",
  /** ISO time of the last run that finished with nothing left to do. */
  lastSync: "last_sync",
  /** PendingOp[]: what the last run left undone. */
  pending: "pending",
  /** ConflictCopy[]: the conflicted copies runs made, newest last. */
  conflicts: "conflicts",
} as const;

/** One thing left for a later run. */
export interface PendingOp {
  /** The operation, or "wait" for a file still being written. */
  op: SyncOpType | "wait";
  path: string;
  to?: string;
  why: OpWhy | "unstable";
  /** Why it did not happen (the check that failed, the error). */
  message?: string;
}

export interface ConflictCopy {
  /** The path whose local version was moved aside. */
  path: string;
  /** The conflicted copy. */
  to: string;
  /** ISO time it was made. */
  time: string;
}

/** Conflicted copies kept for status: the most recent. */
export const CONFLICTS_KEPT = 50;

export function readValue<T>(state: Pick<SyncState, "getValue">, key: string): T | undefined {
  const raw = state.getValue(key);
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return undefined;
  }
}

/** What to do about a halt, in a sentence: for the error line and for status. */
export function haltAdvice(halt: SyncHalt): string {
  switch (halt.reason) {
    case "max_delete":
      return "nothing was deleted; if the deletes are meant, run again with --force (once) or a higher --max-delete";
    case "root_missing":
    case "root_empty":
    case "device_changed":
      return "nothing was deleted; check the folder is there and its disk mounted; if it moved on purpose, run again with --force (once)";
    case "marker_missing":
      return `nothing was deleted; the folder lost its .drive-sync marker: is it the folder that was synced? If so, run again with --force (once)`;
    case "remote_root_missing":
      return "nothing was deleted; check the remote folder (drive ls); if it went on purpose, run again with --force (once)";
  }
}
