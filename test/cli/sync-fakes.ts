import { createFilter } from "../../cli/local/filter.js";
import type { RunEvent } from "../../cli/transfer/events.js";
import { applySteps, effectOf } from "../../cli/sync/plan-effects.js";
import type { SyncDeps } from "../../cli/sync/sync-deps.js";
import type { LocalNode, LocalStat, OpOutcome, Plan, PlanInput, RemoteNode, SyncedNode, SyncOp, SyncState } from "../../cli/sync/types.js";

/**
 * In-memory parts for the sync loop's tests: a disk and a server that are
 * Maps, a state of Maps and applySteps, a small planner (new on one side:
 * copy it to the other; the same on both: record it) and an executor that
 * carries out an operation by changing the Maps and recording effectOf, as
 * the real one does. The real parts are tested on their own, and together
 * at integration.
 */

export const STAT: LocalStat = { dev: 1n, ino: 1n, size: 1, mtimeNs: 1n, ctimeNs: 1n, mode: 0o644, recordedNs: 1n };
export const file = (id: string, hash: string): LocalNode => ({ id, kind: "file", hash, size: hash.length, mode: 0o644, mtimeUs: 1, stat: STAT });

export class MemState implements SyncState {
  readonly synced = new Map<string, SyncedNode>();
  readonly remote = new Map<string, RemoteNode>();
  cursor = "";
  values = new Map<string, string>();
  closed = false;
  private n = 0;
  async editSynced(steps: Parameters<SyncState["editSynced"]>[0]) {
    applySteps(this.synced, steps);
  }
  async editRemote(steps: Parameters<SyncState["editRemote"]>[0], cursor: string, opts?: { replace?: boolean }) {
    if (opts?.replace) this.remote.clear();
    applySteps(this.remote, steps);
    this.cursor = cursor;
  }
  getValue(key: string) {
    return this.values.get(key);
  }
  async setValue(key: string, value: string | undefined) {
    if (value === undefined) this.values.delete(key);
    else this.values.set(key, value);
  }
  newId() {
    return `n${++this.n}`;
  }
  async close() {
    this.closed = true;
  }
}

/** A planner for the tests: what is on one side only goes to the other; what both hold alike is recorded. */
function tinyPlan(input: PlanInput): Plan {
  const ops: SyncOp[] = [];
  for (const [path, l] of input.local) {
    if (input.unknown?.(path) || l.unstable) continue;
    const r = input.remote.get(path);
    if (!r) ops.push({ type: "upload", path, id: l.id, local: l, baseRevision: 0, why: "local_new" });
    else if (!input.synced.has(path) && r.hash === l.hash) ops.push({ type: "record", path, node: { ...l }, why: "same_change" });
  }
  for (const [path, r] of input.remote) {
    if (input.unknown?.(path)) continue;
    if (!input.local.has(path)) ops.push({ type: "download", path, remote: r, replaces: null, why: "remote_new" });
  }
  return { ops, notes: [] };
}

export function harness(over: Partial<SyncDeps> = {}) {
  const disk = new Map<string, LocalNode>();
  const server = new Map<string, RemoteNode>();
  const state = new MemState();
  const events: RunEvent[] = [];
  const plans: PlanInput[] = [];
  let executions = 0;
  const deps: SyncDeps = {
    openState: async () => state,
    refreshRemote: async (_c, st) => {
      await st.editRemote([...server].map(([path, node]) => ({ type: "set" as const, path, node })), `c${server.size}`, { replace: true });
      return { changed: true, reset: false };
    },
    scanLocal: async () => ({ tree: new Map(disk), unknown: new Set<string>(), bytesHashed: 0 }),
    checkRoots: async () => null,
    readMarker: async () => null,
    planSync: (input) => {
      plans.push(input);
      return tinyPlan(input);
    },
    executePlan: async (_c, st, ops) => {
      executions++;
      const out: OpOutcome[] = [];
      for (const op of ops) {
        if (op.type === "upload") server.set(op.path, { ...op.local, revision: 1 });
        if (op.type === "download") disk.set(op.path, { ...op.remote, stat: STAT });
        if (op.type === "conflict_copy") disk.set(op.to, disk.get(op.path)!);
        await st.editSynced(effectOf(op));
        out.push({ op, outcome: "done" });
      }
      return out;
    },
    followChanges: async function* () {},
    watchLocal: async () => ({ mode: "events", folders: 0, close: async () => {} }),
    createFilter,
    readIgnoreFile: async () => undefined,
    ...over,
  };
  return { deps, disk, server, state, events, plans, emit: (e: RunEvent) => events.push(e), executions: () => executions };
}

