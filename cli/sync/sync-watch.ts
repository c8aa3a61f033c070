import type { DriveClient } from "../rpc/drive-client.js";
import type { RunEvent, RunListener } from "../transfer/events.js";
import { RideOut } from "../watch/ride-out.js";
import { Wake } from "../watch/wake.js";
import { syncDeps, type SyncDeps } from "./sync-deps.js";
import { prepareRoot, syncKey, syncRounds, type ScanCache } from "./sync-run.js";
import { readValue, VALUES, type PendingOp } from "./sync-values.js";
import type { SyncOptions, SyncResult } from "./types.js";

export interface SyncWatchOptions extends SyncOptions {
  /** Full rescans at this interval, with jitter (the local watcher's); 0: none. */
  rescanMs: number;
}

/** Hints are gathered this long before a run, so a burst (a checkout, an unzip) makes one run. */
const DEBOUNCE_MS = 25;
/** Operations that failed are tried again this much later (sooner if anything changes). */
const RETRY_FAILED_MS = 10_000;
/** Without a local watcher (the root is gone, or it could not start), look this often. */
const POLL_MS = 5_000;

/**
 * `drive sync --watch`: a sync, then another whenever the root changes (the
 * local watcher's hints, its rescans), the server does (the feed, followed
 * from the state's cursor, only to wake: refreshRemote reads the changes),
 * a file still being written has had settleMs to settle, or failed
 * operations are due again. The state stays open, and locked, for the
 * whole watch. A server that goes away is ridden out with backoff, said
 * once; a halt is said once, and the watch waits for the root to come
 * back. Ends when the signal aborts, with what it did added up (pending
 * and failures: the last run's).
 */
export async function watchSync(deps: SyncDeps, client: DriveClient, opts: SyncWatchOptions, emit: RunListener): Promise<SyncResult> {
  const signal = opts.signal;
  const key = await syncKey(client, opts);
  const state = await deps.openState(key, opts.stateDir);
  const wake = new Wake();
  const totals: SyncResult = { rounds: 0, opsDone: 0, opsFailed: 0, conflicts: 0, pending: [] };
  let down = false;
  const rideOut = new RideOut((ev) => {
    if (!down) emit(ev);
    down = true;
  }, signal);
  let lastHalt = "";
  const runEmit: RunListener = (ev: RunEvent) => {
    if (ev.type === "sync_halt") {
      if (`${ev.reason}:${ev.message}` === lastHalt) return;
      lastHalt = `${ev.reason}:${ev.message}`;
    }
    emit(ev);
  };
  let follower: AbortController | undefined;
  let local: Awaited<ReturnType<SyncDeps["watchLocal"]>> | null = null;
  let filter = deps.createFilter(opts.filter);
  const scans: ScanCache = { hints: 0 };
  try {
    await prepareRoot(key.localRoot, state, opts);
    local = await deps
      .watchLocal({ root: key.localRoot, filter: () => filter, rescanMs: opts.rescanMs, signal, emit, onHints: () => (scans.hints++, wake.kick(DEBOUNCE_MS)), onRescan: () => (scans.hints++, wake.kick(0)) })
      .catch((err: Error) => {
        emit({ type: "warning", message: `cannot watch ${opts.local} (${err.message}): looking every ${POLL_MS / 1000} s instead` });
        return null;
      });
    let force = opts.force;
    const said = new Set<string>();
    while (!signal.aborted) {
      let r: SyncResult;
      try {
        filter = deps.createFilter({ ...opts.filter, ignoreFile: await deps.readIgnoreFile(key.localRoot) });
        // Without a watcher every run walks the tree.
        if (!local) scans.hints++;
        r = await syncRounds(deps, client, state, key, { ...opts, force }, runEmit, said, scans);
      } catch (err) {
        if (signal.aborted) break;
        await rideOut.failed(err, "sync"); // rethrows what is not worth riding out
        continue;
      }
      force = false;
      rideOut.ok();
      if (down) emit({ type: "warning", message: "the server answers again: syncing" });
      down = false;
      if (!r.halted) lastHalt = "";
      add(totals, r);
      // From where this run left Remote: our own operations' echoes, already read, do not wake another run.
      follower?.abort();
      if (state.cursor) follower = followRemote(deps, client, key.remoteRoot, state.cursor, wake, signal);
      const pending = readValue<PendingOp[]>(state, VALUES.pending) ?? [];
      if (pending.some((p) => p.op === "wait")) wake.kick(opts.settleMs);
      if (r.opsFailed > 0) wake.kick(RETRY_FAILED_MS);
      await wake.wait(local ? undefined : POLL_MS, signal);
    }
    return totals;
  } finally {
    follower?.abort();
    await local?.close();
    await state.close();
  }
}

export function runSyncWatch(client: DriveClient, opts: SyncWatchOptions, emit: RunListener): Promise<SyncResult> {
  return watchSync(syncDeps, client, opts, emit);
}

/**
 * Follows the feed from cursor, waking the loop on every change. The
 * follower reconnects by itself; when it ends (a cursor reset,
 * a permanent error), it wakes a run, which reads the feed itself and
 * says what is wrong, and the loop starts a new follower after it.
 */
function followRemote(deps: SyncDeps, client: DriveClient, prefix: string, cursor: string, wake: Wake, signal: AbortSignal): AbortController {
  const own = new AbortController();
  const s = AbortSignal.any([signal, own.signal]);
  void (async () => {
    try {
      for await (const step of deps.followChanges(client, { cursor, prefix, signal: s })) if (step.changes.length > 0) wake.kick(DEBOUNCE_MS);
    } catch {
      // The run that follows reports it.
    } finally {
      if (!s.aborted) wake.kick(1_000);
      own.abort();
    }
  })();
  return own;
}

function add(t: SyncResult, r: SyncResult): void {
  t.rounds += r.rounds;
  t.opsDone += r.opsDone;
  t.conflicts += r.conflicts;
  t.opsFailed = r.opsFailed;
  t.pending = r.pending;
  if (r.firstFailure) t.firstFailure = r.firstFailure;
  else delete t.firstFailure;
  if (r.halted) t.halted = r.halted;
  else delete t.halted;
}
