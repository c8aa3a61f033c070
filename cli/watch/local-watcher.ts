import { lstat } from "node:fs/promises";
import { relative, sep } from "node:path";
import watcher from "@parcel/watcher";
import type { PathFilter } from "../local/types.js";
import type { RunListener } from "../transfer/events.js";
import { budgetFor, budgetMessage, maxUserWatches, type Budget } from "./inotify-budget.js";
import { scanFolder } from "./scan-folder.js";

export type RescanReason = "periodic" | "watcher_error" | "polling";

export interface LocalWatchOptions {
  root: string;
  /** The filter as it is now (it changes when .driveignore does). */
  filter: () => PathFilter;
  /** Full rescans at this interval, with ±25 % jitter; 0: none (but polling mode always rescans). */
  rescanMs: number;
  signal: AbortSignal;
  /** Relative NFC paths that may have changed: hints, not truth. */
  onHints: (paths: string[]) => void;
  /** Look at the whole tree: it is time, the watcher failed, or there is no watcher. */
  onRescan: (reason: RescanReason) => void;
  emit: RunListener;
  /** The inotify budget; default: read from /proc. */
  maxWatches?: number;
}

export interface LocalWatcher {
  readonly mode: "events" | "polling";
  /** Folders counted under the root at start and as they appeared. */
  readonly folders: number;
  close(): Promise<void>;
}

/** A new folder is scanned when it appears and once more this much later. */
const AGAIN_MS = 300;

/** Rescans this often when there is no watcher: a full walk, so not too often. */
export const POLL_MS = 5_000;

/**
 * Watches a root for local changes. @parcel/watcher (inotify on Linux, one
 * watch per folder) gives hints; a new folder is scanned at once, since the
 * watcher misses what is created inside it before it watches it (its issue
 * #97); periodic rescans with jitter catch whatever else it missed, and a
 * watcher error triggers one at once. A tree over the inotify budget, or a
 * watcher that cannot start, falls back to polling rescans.
 */
export async function watchLocal(opts: LocalWatchOptions): Promise<LocalWatcher> {
  const limit = "maxWatches" in opts ? opts.maxWatches : await maxUserWatches();
  let folders = (await scanFolder(opts.root, "", opts.filter(), opts.signal)).folders;
  let warned: Budget = "ok";
  let closed = false;
  const checkBudget = (): Budget => {
    const b = budgetFor(folders, limit);
    if (b !== "ok" && b !== warned && limit !== undefined) {
      warned = b;
      opts.emit({ type: "warning", message: budgetMessage(folders, limit, b) });
    }
    return b;
  };

  let sub: watcher.AsyncSubscription | undefined;
  if (checkBudget() !== "over") {
    try {
      sub = await watcher.subscribe(opts.root, (err, events) => {
        if (err) {
          opts.emit({ type: "warning", message: `file watcher: ${err.message}; rescanning` });
          opts.onRescan("watcher_error");
          return;
        }
        if (closed) return;
        void onEvents(events).catch((e: Error) => {
          opts.emit({ type: "warning", message: `file watcher: ${e.message}; rescanning` });
          opts.onRescan("watcher_error");
        });
      });
    } catch (err) {
      opts.emit({ type: "warning", message: `file watcher could not start (${(err as Error).message}): watching by rescans every ${POLL_MS / 1000} s instead` });
    }
  }

  const onEvents = async (events: watcher.Event[]) => {
    const filter = opts.filter();
    const hints: string[] = [];
    for (const ev of events) {
      const rel = relative(opts.root, ev.path).split(sep).join("/").normalize("NFC");
      if (!rel || rel.startsWith("..") || excludedBy(filter, rel)) continue;
      if (ev.type === "delete") {
        if (!(filter.excludes(rel, false) && filter.excludes(rel, true))) hints.push(rel);
        continue;
      }
      const st = await lstat(ev.path).catch(() => null);
      const isDir = st?.isDirectory() ?? false;
      if (filter.excludes(rel, isDir)) continue;
      hints.push(rel);
      if (ev.type === "create" && isDir) {
        const diskRel = relative(opts.root, ev.path).split(sep).join("/");
        const found = await scanFolder(opts.root, diskRel, filter, opts.signal);
        hints.push(...found.paths);
        folders += found.folders;
        if (checkBudget() === "over") opts.onRescan("watcher_error");
        // The watcher adds its watches on the new folders after this scan: what lands in between is seen by neither. Look once more.
        setTimeout(() => void rescanFolder(diskRel), AGAIN_MS).unref();
      }
    }
    if (hints.length > 0) opts.onHints(hints);
  };

  const rescanFolder = async (diskRel: string) => {
    if (closed || opts.signal.aborted) return;
    const found = await scanFolder(opts.root, diskRel, opts.filter(), opts.signal);
    if (found.paths.length > 0) opts.onHints(found.paths);
  };

  const mode = sub ? "events" : "polling";
  const every = mode === "polling" ? Math.min(opts.rescanMs || POLL_MS, POLL_MS) : opts.rescanMs;
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    if (every <= 0 || closed || opts.signal.aborted) return;
    timer = setTimeout(() => {
      opts.onRescan(mode === "polling" ? "polling" : "periodic");
      schedule();
    }, every * (0.75 + Math.random() * 0.5));
  };
  schedule();

  return {
    mode,
    get folders() {
      return folders;
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      await sub?.unsubscribe().catch(() => undefined);
    },
  };
}

/** True when a folder above rel is left out: nothing under it is ever looked at. */
function excludedBy(filter: PathFilter, rel: string): boolean {
  for (let i = rel.indexOf("/"); i > 0; i = rel.indexOf("/", i + 1)) {
    if (filter.excludes(rel.slice(0, i), true)) return true;
  }
  return false;
}
