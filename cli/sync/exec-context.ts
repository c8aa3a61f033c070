import { Code, ConnectError } from "@connectrpc/connect";
import type { ItemError } from "../../gen/drive/v1/tree_pb.js";
import { toCliError } from "../errors.js";
import type { Fence } from "../local/fence.js";
import type { DriveClient } from "../rpc/drive-client.js";
import { tagFile, type RunListener, type TransferListener } from "../transfer/events.js";
import type { Agents, EtagKind } from "../transfer/part-http.js";
import type { Slots } from "../transfer/run-parallel.js";
import { itemError } from "../tree/tree-run.js";
import { syncFolder } from "../tree/write-local.js";
import { OpSkipped } from "./exec-check.js";
import { effectOf, type OpResult } from "./plan-effects.js";
import type { ExecuteOptions, OpOutcome, SyncedNode, SyncOp, SyncState, TreeStep } from "./types.js";

/** What one execution shares: the connection, the fence, the pool, and the outcomes so far. */
export interface ExecContext {
  client: DriveClient;
  state: SyncState;
  opts: ExecuteOptions;
  fence: Fence;
  slots: Slots;
  agents: Agents;
  etags: EtagKind;
  emit: RunListener;
  outcomes: OpOutcome[];
  /** Serialises Synced edits: batches finish in any order, transactions go one at a time. */
  writing: Promise<void>;
  nextFile: number;
  /** The file key of each op whose transfer events began, so that its end is told as push and pull tell it. */
  files: Map<SyncOp, number>;
  /** Local ops done but not yet recorded, and the folders to fsync before they are (recordSoon). */
  deferred: { done: DoneItem[]; dirs: Set<string> };
}

export interface DoneItem {
  op: SyncOp;
  result?: OpResult;
  message?: string;
}

/** A fresh file key for the op's transfer events, and the listener tagged with it. */
export function fileEvents(ctx: ExecContext, op: SyncOp): TransferListener {
  const key = ctx.nextFile++;
  ctx.files.set(op, key);
  return tagFile(ctx.emit, key);
}

/** The path an op is reported under, and its destination for moves. */
function where(op: SyncOp): { path: string; to?: string } {
  if (op.type === "local_move" || op.type === "remote_move") return { path: op.from, to: op.to };
  if (op.type === "conflict_copy") return { path: op.path, to: op.to };
  return { path: op.path };
}

function report(ctx: ExecContext, o: OpOutcome): void {
  ctx.outcomes.push(o);
  const key = ctx.files.get(o.op);
  // A transfer that began and did not end done: closed for the accounting as a tree's would be.
  if (key !== undefined && o.outcome === "failed") ctx.emit({ type: "file_failed", file: key, path: where(o.op).path, message: o.message ?? "", code: o.code ?? "internal" });
  if (key !== undefined && o.outcome === "skipped") ctx.emit({ type: "file_skipped", path: where(o.op).path, bytes: 0, reason: "changed_locally" });
  ctx.emit({ type: "sync_op", op: o.op.type, ...where(o.op), why: o.op.why, outcome: o.outcome, ...(o.message !== undefined ? { message: o.message } : {}) });
}

/**
 * Records the successes of one group in one Synced transaction, and only
 * then reports them done: Synced never claims what a side does not hold.
 * A state that cannot be written rejects (the run stops).
 */
export async function recordDone(ctx: ExecContext, done: DoneItem[]): Promise<void> {
  if (done.length === 0) return;
  const steps: TreeStep<SyncedNode>[] = done.flatMap((d) => effectOf(d.op, d.result));
  const write = ctx.writing.then(() => (steps.length ? ctx.state.editSynced(steps) : undefined));
  ctx.writing = write.catch(() => undefined);
  try {
    await write;
  } catch (err) {
    throw new StateWriteFailed(err);
  }
  for (const d of done) report(ctx, { op: d.op, outcome: "done", ...(d.message !== undefined ? { message: d.message } : {}) });
}

/** Local ops come one at a time: recorded a group at a time, once the folders they changed are fsynced. */
const DEFERRED_MAX = 250;

/** A local op's success, recorded with the next group (flushRecords); its folders are fsynced first. */
export async function recordSoon(ctx: ExecContext, item: DoneItem, dirs: string[]): Promise<void> {
  ctx.deferred.done.push(item);
  for (const d of dirs) ctx.deferred.dirs.add(d);
  if (ctx.deferred.done.length >= DEFERRED_MAX) await flushRecords(ctx);
}

export async function flushRecords(ctx: ExecContext): Promise<void> {
  const { done, dirs } = ctx.deferred;
  if (done.length === 0) return;
  ctx.deferred = { done: [], dirs: new Set() };
  for (const d of dirs) await syncFolder(d);
  await recordDone(ctx, done);
}

/** The state could not be written: not one op's failure, the run's. */
export class StateWriteFailed extends Error {
  override readonly name = "StateWriteFailed";
  constructor(cause: unknown) {
    super(`the sync state could not be written: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

export function skipped(ctx: ExecContext, op: SyncOp, message: string): void {
  report(ctx, { op, outcome: "skipped", message });
}

/** A check the server made and the op failed: skipped, since the next round plans from what is there now. */
const SKIP_REASONS = new Set(["REVISION_CONFLICT", "DESTINATION_EXISTS"]);

/**
 * How an op that threw ends: a failed check (ours, or the server's:
 * a stale revision, a destination taken, a path gone) is skipped; anything
 * else failed, with the CLI error code. An abort is not an outcome: it
 * is thrown on, for the run to stop.
 */
export function settleError(ctx: ExecContext, op: SyncOp, err: unknown): void {
  if (err instanceof StateWriteFailed) throw err;
  // Once aborted, what fails is the abort's doing: not an outcome, the run stops.
  if (ctx.opts.signal.aborted && !(err instanceof OpSkipped)) throw ctx.opts.signal.reason ?? err;
  classify(ctx, op, err);
}

function classify(ctx: ExecContext, op: SyncOp, err: unknown): void {
  if (err instanceof OpSkipped) return skipped(ctx, op, err.message);
  const e = toCliError(err);
  const cause = err instanceof ConnectError ? err : e.cause instanceof ConnectError ? e.cause : undefined;
  const gone = (err as NodeJS.ErrnoException)?.code === "ENOENT";
  if ((e.reason && SKIP_REASONS.has(e.reason)) || cause?.code === Code.NotFound || cause?.code === Code.AlreadyExists || gone) {
    return skipped(ctx, op, e.message);
  }
  // The server is gone (retries spent): every op after this one would wait out the same retries. The run stops (exit 7), and a watch rides it out.
  if (e.kind === "unavailable") throw err;
  report(ctx, { op, outcome: "failed", message: e.message, code: e.kind });
}

/** A batch item's error: the server's answer, an outcome even during an abort, settled as the same error from a unary call would be. */
export function settleItemError(ctx: ExecContext, op: SyncOp, e: ItemError | undefined, remotePath: string): void {
  classify(ctx, op, itemError(e, remotePath));
}

/** Runs one op's body, settling whatever it throws; the body records its own success. */
export async function guarded(ctx: ExecContext, op: SyncOp, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    settleError(ctx, op, err);
  }
}
