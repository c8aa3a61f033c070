import { mkdir, realpath, stat } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { indexBaseDir } from "../local/index-store.js";
import { syncBaseDir } from "./state-store.js";
import { CliError } from "../errors.js";
import { sleep } from "../rpc/retry.js";
import type { PathFilter } from "../local/types.js";
import type { DriveClient } from "../rpc/drive-client.js";
import type { RunListener } from "../transfer/events.js";
import { conflictName } from "../tree/conflict-name.js";
import { deleteAllowance } from "./plan.js";
import { syncDeps, type SyncDeps } from "./sync-deps.js";
import { CONFLICTS_KEPT, readValue, VALUES, type ConflictCopy, type PendingOp } from "./sync-values.js";
import { MARKER_NAME, type LocalScan, type OpOutcome, type RunSync, type SyncHalt, type SyncKey, type SyncNode, type SyncOp, type SyncOptions, type SyncResult, type SyncState, type Tree } from "./types.js";

/** A run that has not converged after this many rounds stops and reports what is left: a planner that keeps finding work is a bug, not a reason to loop forever. */
export const MAX_ROUNDS = 30;
/** Rounds in a row in which no operation got done before the run gives up on the rest (it is pending for the next run). */
const STALLED_ROUNDS = 2;

/** The SyncKey of a root: the server, the remote folder without slashes at its ends, the local folder's realpath. */
export async function syncKey(client: Pick<DriveClient, "server">, opts: Pick<SyncOptions, "local" | "remote">): Promise<SyncKey> {
  return { server: client.server, remoteRoot: opts.remote.replace(/^\/+|\/+$/g, ""), localRoot: await realpathOf(opts.local) };
}

/**
 * realpath of a root that may not exist yet (a first sync makes it): the
 * realpath of its parent, then its name; so the key is the same before and
 * after it is made.
 */
async function realpathOf(local: string): Promise<string> {
  try {
    return await realpath(local);
  } catch {
    const parent = await realpath(dirname(resolve(local))).catch(() => dirname(resolve(local)));
    return join(parent, basename(resolve(local)));
  }
}

/** A one-off sync waits this many times for files still being written (settleMs each) before it leaves them pending. */
const SETTLE_WAITS = 3;

/**
 * `drive sync` once: opens the root's state, syncs it (syncRounds), closes
 * it. A file saved just before the run is still settling: when that is all
 * that is left, it waits for it a few times rather than leave it for a run
 * that may not come.
 */
export function makeRunSync(deps: SyncDeps): RunSync {
  return async (client, opts, emit) => {
    const key = await syncKey(client, opts);
    const state = await deps.openState(key, opts.stateDir);
    try {
      const said = new Set<string>();
      let r = await syncRounds(deps, client, state, key, opts, emit, said);
      for (let i = 0; i < SETTLE_WAITS && !opts.dryRun && !r.halted && r.pending.length > 0 && onlySettling(state); i++) {
        await sleep(opts.settleMs, opts.signal);
        const next = await syncRounds(deps, client, state, key, { ...opts, force: false }, emit, said);
        r = { ...next, rounds: r.rounds + next.rounds, opsDone: r.opsDone + next.opsDone, conflicts: r.conflicts + next.conflicts };
      }
      return r;
    } finally {
      await state.close();
    }
  };
}

function onlySettling(state: SyncState): boolean {
  return (readValue<PendingOp[]>(state, VALUES.pending) ?? []).every((p) => p.op === "wait");
}

export const runSync: RunSync = makeRunSync(syncDeps);

/**
 * One two-way sync of a root whose state is open (a watch keeps it open
 * between runs). The guard first: a halt is recorded, reported, and
 * nothing is planned. Then rounds of refresh, scan, plan and execute until
 * a plan holds nothing (or a halt, or no progress two rounds in a row, or
 * MAX_ROUNDS): each round plans from what the last one left, so an
 * operation skipped because something changed under it is planned again
 * from what is there now. --force holds for the whole run. The
 * executor records each success as it lands, so an abort (opts.signal)
 * leaves the state consistent; this only adds what status shows. What is
 * said once (a skipped path, a note) is remembered in `said`: a watch
 * passes one set for all its runs.
 */
export async function syncRounds(
  deps: SyncDeps,
  client: DriveClient,
  state: SyncState,
  key: SyncKey,
  opts: SyncOptions,
  emit: RunListener,
  said = new Set<string>(),
  scans?: ScanCache,
): Promise<SyncResult> {
  const { signal, dryRun } = opts;
  const root = key.localRoot;
  const result: SyncResult = { rounds: 0, opsDone: 0, opsFailed: 0, conflicts: 0, pending: [] };
  await prepareRoot(root, state, opts);

  const halt = async (h: SyncHalt): Promise<SyncResult> => {
    if (!dryRun) await state.setValue(VALUES.halt, JSON.stringify(h));
    emit({ type: "sync_halt", reason: h.reason, message: h.message });
    return { ...result, halted: h };
  };

  // A dry run writes nothing, the marker included: --force is weighed, not acted on.
  const guardHalt = dryRun && state.synced.size === 0 ? null : await deps.checkRoots(state, key, opts.force && !dryRun);
  if (guardHalt) {
    if (!(dryRun && opts.force)) return halt(guardHalt);
    emit({ type: "warning", message: `${guardHalt.message} (--force would go on: planning as if it did)` });
  }

  // --force holds for this run (all its rounds), and is never remembered.
  const force = opts.force;
  let allowance: number | undefined;
  const deleted = { local: 0, remote: 0 };
  let stalled = 0;
  let pending: PendingOp[] = [];
  let clean = false;
  let firstFailure: string | undefined;
  const latest = new Map<string, OpOutcome>();
  const made: ConflictCopy[] = [];
  const once = (k: string) => !said.has(k) && !!said.add(k);

  for (;;) {
    signal.throwIfAborted();
    if (result.rounds >= MAX_ROUNDS) {
      emit({ type: "warning", message: `still finding work after ${MAX_ROUNDS} rounds: stopping; ${pending.length} operation(s) left for the next run` });
      break;
    }
    result.rounds++;
    await deps.refreshRemote(client, state, key.remoteRoot, signal);
    const filter = deps.createFilter({ ...opts.filter, ignoreFile: await deps.readIgnoreFile(root) });
    const hintsBefore = scans?.hints ?? 0;
    const kept = result.rounds === 1 && scans?.last && scans.last.hints === hintsBefore ? scans.last.scan : undefined;
    const scan = kept ?? await deps.scanLocal({
      root,
      filter,
      synced: state.synced,
      settleMs: opts.settleMs,
      signal,
      newId: () => state.newId(),
      onProgress: (entries) => emit({ type: "tree_scan", side: "local", entries }),
      onSkip: (path, reason, detail) => {
        if (once(`skip:${path}`)) emit({ type: "file_skipped", path, bytes: 0, reason });
        if (detail && once(`skipwhy:${path}`)) emit({ type: "warning", path, message: detail });
      },
    });
    // --max-delete holds for the whole run, not per round: deletes a move held back to a later round count with the rest.
    allowance ??= deleteAllowance(opts.maxDelete, state.synced);
    if (scans && !kept) scans.last = [...scan.tree.values()].some((n) => n.unstable) ? undefined : { scan, hints: hintsBefore };
    const plan = deps.planSync({
      synced: state.synced,
      local: scan.tree,
      remote: state.remote,
      maxDelete: result.rounds === 1 ? opts.maxDelete : { count: Math.max(0, allowance - Math.max(deleted.local, deleted.remote)) },
      force,
      unknown: unknownPaths(scan, filter, [state.synced, scan.tree, state.remote], ownFolders(root)),
      conflictName: (p) => conflictName(p, new Date()),
    });
    for (const n of plan.notes) {
      // A conflicted copy leaves its path looking deleted here, and the server's version takes it: no delete to report.
      if (n.why === "edit_beats_delete" && said.has(`note:conflict:${n.path}`)) continue;
      if (once(`note:${n.why}:${n.path}`)) emit({ type: "warning", path: n.path, message: n.message });
    }
    if (plan.halted) return halt(plan.halted);
    const waiting = unstable(scan);

    if (plan.ops.length === 0) {
      pending = waiting;
      clean = true;
      break;
    }
    if (dryRun) {
      for (const op of plan.ops) emit({ type: "sync_op", ...opFields(op), outcome: "planned" });
      pending = [...plan.ops.map((op) => pendingOf(op)), ...waiting];
      break;
    }

    if (scans) scans.last = undefined; // what this round does changes the disk: the next round walks it again
    const outcomes = await deps.executePlan(client, state, plan.ops, { root, remote: key.remoteRoot, concurrency: opts.concurrency, compress: opts.compress, signal }, emit);
    let done = 0;
    for (const o of outcomes) {
      latest.set(opKey(o.op), o);
      if (o.outcome === "done") {
        done++;
        if (o.op.type === "local_delete" && o.op.local.kind === "file") deleted.local++;
        if (o.op.type === "remote_delete" && o.op.kind === "file") deleted.remote++;
        if (o.op.type === "conflict_copy") made.push({ path: o.op.path, to: o.op.to, time: new Date().toISOString() });
      } else if (o.outcome === "failed") firstFailure ??= o.code ?? "internal";
    }
    result.opsDone += done;
    pending = [...outcomes.filter((o) => o.outcome !== "done").map((o) => pendingOf(o.op, o.message)), ...waiting];
    stalled = done === 0 ? stalled + 1 : 0;
    if (stalled >= STALLED_ROUNDS) {
      emit({ type: "warning", message: `${pending.length} operation(s) could not be done in ${STALLED_ROUNDS} rounds in a row: left for the next run` });
      break;
    }
  }

  result.conflicts = made.length;
  // An operation that failed once and then got done is no failure.
  result.opsFailed = [...latest.values()].filter((o) => o.outcome === "failed").length;
  if (result.opsFailed > 0) result.firstFailure = firstFailure;
  result.pending = pending.map((p) => p.path);
  if (!dryRun) await saveValues(state, pending, made, clean);
  return result;
}

/** A first sync makes a missing root; a root that is not a folder is refused. Once synced, a missing root is the guard's to judge. */
export async function prepareRoot(root: string, state: SyncState, opts: SyncOptions): Promise<void> {
  const st = await stat(root).catch(() => null);
  if (st && !st.isDirectory()) throw new CliError("usage", `${opts.local} is not a folder: drive sync syncs folders`);
  if (st || state.synced.size > 0) return;
  if (opts.dryRun) throw new CliError("not_found", `${opts.local} does not exist (a dry run makes nothing; without --dry-run, sync makes it)`);
  await mkdir(root, { recursive: true });
}

/** What status shows afterwards: the halt cleared (the guard and the planner let this run through), what is pending, the copies made. */
async function saveValues(state: SyncState, pending: PendingOp[], made: ConflictCopy[], clean: boolean): Promise<void> {
  await state.setValue(VALUES.halt, undefined);
  await state.setValue(VALUES.pending, JSON.stringify(pending));
  if (made.length > 0) {
    const before = readValue<ConflictCopy[]>(state, VALUES.conflicts) ?? [];
    await state.setValue(VALUES.conflicts, JSON.stringify([...before, ...made].slice(-CONFLICTS_KEPT)));
  }
  if (clean) await state.setValue(VALUES.lastSync, new Date().toISOString());
}

/**
 * The paths the planner must not see: what the scan could not read or is
 * not ours (and all under it), what the filter leaves out (a new ignore
 * rule so never turns into deletes, on either side), and the marker.
 */
export function unknownPaths(scan: Pick<LocalScan, "unknown">, filter: PathFilter, trees: ReadonlyArray<Tree<SyncNode>>, own: ReadonlySet<string> = new Set()): (path: string) => boolean {
  const memo = new Map<string, boolean>();
  const isFolder = (p: string) => trees.some((t) => t.get(p)?.kind === "folder");
  const test = (p: string, folder: boolean): boolean => {
    const known = memo.get(p);
    if (known !== undefined) return known;
    const slash = p.lastIndexOf("/");
    const name = p.slice(slash + 1);
    const out = name === MARKER_NAME || scan.unknown.has(p) || own.has(p) || (slash > 0 && test(p.slice(0, slash), true)) || filter.excludes(p, folder);
    memo.set(p, out);
    return out;
  };
  return (p) => p !== "" && test(p, isFolder(p));
}

/** Files the scan found still changing: synced once they settle. */
function unstable(scan: LocalScan): PendingOp[] {
  const out: PendingOp[] = [];
  for (const [path, n] of scan.tree) if (n.unstable) out.push({ op: "wait", path, why: "unstable", message: "still being written" });
  return out;
}

/** The fields of a sync_op event for op. */
export function opFields(op: SyncOp): { op: string; path: string; to?: string; why: string } {
  if (op.type === "remote_move" || op.type === "local_move") return { op: op.type, path: op.from, to: op.to, why: op.why };
  if (op.type === "conflict_copy") return { op: op.type, path: op.path, to: op.to, why: op.why };
  return { op: op.type, path: op.path, why: op.why };
}

function pendingOf(op: SyncOp, message?: string): PendingOp {
  const f = opFields(op);
  return { op: op.type, path: f.path, ...(f.to !== undefined ? { to: f.to } : {}), why: op.why, ...(message ? { message } : {}) };
}

function opKey(op: SyncOp): string {
  const f = opFields(op);
  return `${f.op}\0${f.path}\0${f.to ?? ""}`;
}

/**
 * A watch's last scan, for its next run's first round while the local
 * watcher has said nothing since (hints counts what it said): a change
 * only the server made then costs no walk of the tree. Safe even when a
 * hint is late: every local write checks the disk against the plan first.
 */
export interface ScanCache {
  hints: number;
  last?: { scan: LocalScan; hints: number };
}

/**
 * drive's own folders (the sync states, the local index, the scan cache)
 * when they lie under the root, as relative paths: `drive sync ~ home`
 * must not sync the database it writes as it syncs.
 */
function ownFolders(root: string): Set<string> {
  const out = new Set<string>();
  const bases = [syncBaseDir(), indexBaseDir()].filter((b): b is string => !!b).map((b) => dirname(resolve(b)));
  for (const b of bases) {
    const rel = relative(root, b);
    if (rel && !rel.startsWith("..") && !isAbsolute(rel)) out.add(rel.split(sep).join("/"));
  }
  return out;
}
