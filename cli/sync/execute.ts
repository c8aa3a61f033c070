import { Fence } from "../local/fence.js";
import { createAgents, destroyAgents } from "../transfer/part-http.js";
import { runParallel, Slots } from "../transfer/run-parallel.js";
import { batches } from "../tree/tree-run.js";
import { BATCH, BATCHES_IN_FLIGHT, LARGE_LANES } from "../tree/tree-tuning.js";
import { downloadLarge, downloadSmallBatch, isSmallDownload } from "./exec-download.js";
import { flushRecords, guarded, recordDone, settleError, type ExecContext } from "./exec-context.js";
import { localAttrs, localDelete, localMkdir, localRename } from "./exec-local.js";
import { remoteDeletes, remoteMkdirs, remoteMove } from "./exec-remote.js";
import { isSmall, sendLarge, sendSmallBatch, type SendOp } from "./exec-upload.js";
import type { ExecutePlan, SyncOp } from "./types.js";

type Of<T extends SyncOp["type"]> = Extract<SyncOp, { type: T }>;

const depth = (p: string) => (p === "" ? 0 : p.split("/").length);

/** Stable: the plan's order among paths of one depth. */
function shallowFirst<T>(ops: T[], pathOf: (op: T) => string): T[] {
  return ops
    .map((op, i) => ({ op, i, d: depth(pathOf(op)) }))
    .sort((a, b) => a.d - b.d || a.i - b.i)
    .map((x) => x.op);
}

/**
 * Carries out a plan (types.ts ExecutePlan), in this order:
 * 1. conflicted copies and moves, local and remote, shallowest source
 *    first, one at a time (a move changes the paths of what follows);
 * 2. record and forget, which only edit Synced;
 * 3. folders, local and remote, shallowest first;
 * 4. attribute changes;
 * 5. transfers, uploads and downloads, small ones in batches and large
 *    ones in lanes, all sharing one pool of opts.concurrency;
 * 6. deletes, in the plan's order (a folder's after its children's).
 * Every op checks first that what it changes is as the plan saw it, and
 * is skipped if not; its success is recorded in Synced (plan-effects.ts)
 * only once it holds on both sides. On abort nothing new starts; what
 * finished is recorded, and the abort is thrown.
 */
export const executePlan: ExecutePlan = async (client, state, ops, opts, emit) => {
  const fence = await Fence.open(opts.root);
  const agents = createAgents(opts.concurrency);
  const ctx: ExecContext = {
    client,
    state,
    opts,
    fence,
    slots: new Slots(opts.concurrency),
    agents,
    etags: { kind: "unknown" },
    emit,
    outcomes: [],
    writing: Promise.resolve(),
    nextFile: 0,
    files: new Map(),
    deferred: { done: [], dirs: new Set() },
  };
  const { signal } = opts;
  const of = <T extends SyncOp["type"]>(...types: T[]) => ops.filter((op): op is Of<T> => (types as string[]).includes(op.type));
  try {
    // 1. Moves.
    const moves = shallowFirst(of("conflict_copy", "local_move", "remote_move"), (op) => (op.type === "conflict_copy" ? op.path : op.from));
    for (const op of moves) {
      signal.throwIfAborted();
      await guarded(ctx, op, () => (op.type === "remote_move" ? remoteMove(ctx, op) : localRename(ctx, op)));
    }

    // 2. Synced alone (after the moves' records: a record's `from` may lie under a moved path).
    await flushRecords(ctx);
    signal.throwIfAborted();
    await recordDone(ctx, of("record", "forget").map((op) => ({ op })));

    // 3. Folders.
    for (const op of shallowFirst(of("local_mkdir"), (o) => o.path)) {
      signal.throwIfAborted();
      await guarded(ctx, op, () => localMkdir(ctx, op));
    }
    await flushRecords(ctx);
    for (const b of batches(shallowFirst(of("remote_mkdir"), (o) => o.path), BATCH)) {
      signal.throwIfAborted();
      await inBatch(ctx, b, () => remoteMkdirs(ctx, b));
    }

    // 4. Attributes. Remote ones are content the server holds with new attributes: a put, committed at once.
    for (const op of of("local_attrs")) {
      signal.throwIfAborted();
      await guarded(ctx, op, () => localAttrs(ctx, op));
    }
    await flushRecords(ctx);
    await sendAll(ctx, of("remote_attrs"));

    // 5. Transfers, in one pool.
    const downloads = of("download");
    await allSettled([
      sendAll(ctx, of("upload")),
      runParallel(batches(downloads.filter(isSmallDownload), BATCH), BATCHES_IN_FLIGHT, (b) => inBatch(ctx, b, () => downloadSmallBatch(ctx, b)), signal),
      runParallel(downloads.filter((op) => !isSmallDownload(op)), LARGE_LANES, (op) => guarded(ctx, op, () => downloadLarge(ctx, op)), signal),
    ]);

    // 6. Deletes, in plan order: a run of remote ones goes in one call.
    const deletes = of("local_delete", "remote_delete");
    for (let i = 0; i < deletes.length; ) {
      signal.throwIfAborted();
      const op = deletes[i]!;
      if (op.type === "local_delete") {
        await guarded(ctx, op, () => localDelete(ctx, op));
        i++;
        continue;
      }
      const run: Of<"remote_delete">[] = [];
      while (i < deletes.length && deletes[i]!.type === "remote_delete" && run.length < BATCH) run.push(deletes[i++] as Of<"remote_delete">);
      // A folder's remote delete is recorded after the local deletes before it, as the plan ordered them.
      await flushRecords(ctx);
      await inBatch(ctx, run, () => remoteDeletes(ctx, run));
    }
    await flushRecords(ctx);
  } finally {
    destroyAgents(agents);
    // What finished before an abort or a failure is recorded all the same.
    await flushRecords(ctx).catch((err) => {
      if (!signal.aborted) throw err;
    });
    // Whatever was recorded is on disk before this returns or throws.
    await ctx.writing;
  }
  // In the plan's order, whatever order they settled in.
  const at = new Map(ops.map((op, i) => [op, i]));
  return ctx.outcomes.sort((a, b) => at.get(a.op)! - at.get(b.op)!);
};

/** Uploads (or attribute puts): small ones in batches, large ones in lanes, in the pool. */
async function sendAll(ctx: ExecContext, ops: SendOp[]): Promise<void> {
  const { signal } = ctx.opts;
  await allSettled([
    runParallel(batches(ops.filter(isSmall), BATCH), BATCHES_IN_FLIGHT, (b) => inBatch(ctx, b, () => sendSmallBatch(ctx, b)), signal),
    runParallel(ops.filter((op) => !isSmall(op)), LARGE_LANES, (op) => guarded(ctx, op, () => sendLarge(ctx, op)), signal),
  ]);
}

/** Promise.all that waits for every branch before throwing the first failure: nothing runs on after the run returns. */
async function allSettled(work: Promise<unknown>[]): Promise<void> {
  const r = await Promise.allSettled(work);
  const bad = r.find((x): x is PromiseRejectedResult => x.status === "rejected");
  if (bad) throw bad.reason;
}

/**
 * A batch call that fails as a whole (the server unreachable, a bad
 * answer) fails each of its ops that has no outcome yet; the run goes on.
 */
async function inBatch(ctx: ExecContext, ops: SyncOp[], body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    const settled = new Set(ctx.outcomes.map((o) => o.op));
    for (const op of ops) if (!settled.has(op)) settleError(ctx, op, err);
  }
}
