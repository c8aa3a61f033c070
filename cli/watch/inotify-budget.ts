import { readFile } from "node:fs/promises";

/**
 * Linux inotify watches are a per-user budget
 * (/proc/sys/fs/inotify/max_user_watches) shared by every program the user
 * runs. @parcel/watcher spends one per folder; Node 20's recursive fs.watch
 * one per file and folder. Past the budget a watcher fails outright (ENOSPC)
 * or, worse, watches part of the tree.
 */
export const WATCHES_SYSCTL = "fs.inotify.max_user_watches";

/** The budget, or undefined where there is none to read (not Linux). */
export async function maxUserWatches(): Promise<number | undefined> {
  if (process.platform !== "linux") return undefined;
  const text = await readFile("/proc/sys/fs/inotify/max_user_watches", "utf8").catch(() => "");
  const n = Number.parseInt(text, 10);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/** Warn at this share of the budget: other programs (editors, IDEs) hold watches too. */
export const WARN_SHARE = 0.8;

export type Budget = "ok" | "near" | "over";

export function budgetFor(folders: number, limit: number | undefined): Budget {
  if (limit === undefined) return "ok";
  if (folders >= limit) return "over";
  return folders >= limit * WARN_SHARE ? "near" : "ok";
}

export function budgetMessage(folders: number, limit: number, budget: Budget): string {
  const raise = `raise it with: sudo sysctl ${WATCHES_SYSCTL}=${Math.max(limit * 2, folders * 2)} (and in /etc/sysctl.d/ to keep it)`;
  return budget === "over"
    ? `${folders} folders to watch, over the inotify limit of ${limit} (${WATCHES_SYSCTL}): watching by periodic rescans instead; ${raise}`
    : `${folders} folders to watch, ${Math.round((folders / limit) * 100)}% of the inotify limit of ${limit} (${WATCHES_SYSCTL}); ${raise}`;
}
