import { mkdir } from "node:fs/promises";
import type { CommandContext } from "../commands/context.js";
import { ChangeOp } from "../../gen/drive/v1/feed_pb.js";
import { FeedReset, type FeedStep } from "../feed/types.js";
import type { LocalIndex } from "../local/types.js";
import type { DriveClient } from "../rpc/drive-client.js";
import type { RunListener } from "../transfer/events.js";
import type { Change, TreeOptions, TreeResult } from "../tree/types.js";
import { Totals } from "./totals.js";
import { indexKey } from "./index-key.js";
import { LocalEdits } from "./local-edits.js";
import { watchLocal } from "./local-watcher.js";
import { RideOut } from "./ride-out.js";
import type { WatchOptions } from "./types.js";
import type { WatchDeps } from "./watch-deps.js";

/** The feed is read ahead of applying by at most this many changes; then the reader waits. */
const READ_AHEAD = 10_000;
/** A batch with files that failed is tried again this many times before the cursor moves past it. */
const BATCH_ATTEMPTS = 3;

/** A batch whose failed files are worth another try, from the same cursor. */
class BatchFailed extends Error {
  constructor(readonly failed: number) {
    super(`${failed} file(s) failed to apply`);
  }
}

/**
 * pull --watch: a pullTree when the index holds no cursor (the first run, or
 * after a reset), then the feed from the cursor, applied in batches of
 * whatever arrived meanwhile, the cursor saved in the index after each
 * batch is applied and never before. So a kill at any moment loses nothing:
 * the next run starts from the last cursor saved, and reapplies at most one
 * batch (applyChanges skips what the disk already holds). A FeedReset lists
 * again, without deleting what the listing lacks. The follower reconnects by
 * itself; other errors worth riding out restart the loop from the saved
 * cursor after a delay. Feed deletes and moves are always applied: this is a
 * mirror (a local file changed since drive wrote it is still never
 * overwritten: applyChanges keeps it and writes a conflicted copy).
 */
export async function watchPull(deps: WatchDeps, ctx: CommandContext, client: DriveClient, opts: WatchOptions, emit: RunListener): Promise<TreeResult> {
  const signal = AbortSignal.any([ctx.signal, opts.signal]);
  const tree: TreeOptions = { ...opts, signal };
  // The mirror's folder exists before anything watches it (pullTree would make it anyway).
  await mkdir(opts.local, { recursive: true });
  const index = await deps.openIndex(await indexKey(client, opts));
  const filter = deps.createFilter(opts.filter);
  const edits = new LocalEdits(opts.local, index, deps.isUnchanged, emit);
  const rideOut = new RideOut(emit, signal);
  const totals = new Totals();
  let local;
  try {
    // Local edits made while watching are noticed as they happen (and by rescans), not only when a remote change meets them.
    local = await watchLocal({
      root: opts.local,
      filter: () => filter,
      rescanMs: opts.rescanMs,
      signal,
      emit,
      onHints: (paths) => edits.hint(paths),
      onRescan: () => void edits.checkAll().catch(() => undefined),
    });
    let reset = false;
    let stuck = { cursor: "", attempts: 0 };
    while (!signal.aborted) {
      try {
        let cursor = index.getValue("cursor") ?? "";
        if (!cursor) {
          // After a reset, what the listing lacks is unknown, not deleted.
          const r = await deps.pullTree(client, index, reset ? { ...tree, delete: false } : tree, emit);
          totals.add(r);
          await index.setValue("cursor", r.cursor);
          cursor = r.cursor;
          reset = false;
        }
        const acceptFailures = stuck.cursor === cursor && stuck.attempts >= BATCH_ATTEMPTS;
        await follow(deps, client, index, tree, cursor, acceptFailures, emit, totals);
        rideOut.ok();
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof FeedReset) {
          emit({ type: "warning", message: `the feed cannot replay from the saved cursor (${err.message}): listing the folder again; files missing from the listing are kept` });
          await index.setValue("cursor", "");
          reset = true;
          continue;
        }
        if (err instanceof BatchFailed) {
          // Failed files are often a server gone for a moment: try the batch again, a few times.
          const at = index.getValue("cursor") ?? "";
          stuck = { cursor: at, attempts: stuck.cursor === at ? stuck.attempts + 1 : 1 };
          await rideOut.failed(err, "pull", true);
          continue;
        }
        await rideOut.failed(err, "pull");
      }
    }
    return totals.result;
  } finally {
    await local?.close();
    edits.stop();
    await index.close();
  }
}

/** Follows the feed from cursor until the signal aborts or an error: reads ahead while a batch applies, so batches grow under load. */
async function follow(deps: WatchDeps, client: DriveClient, index: LocalIndex, tree: TreeOptions, cursor: string, acceptFailures: boolean, emit: RunListener, totals: Totals): Promise<void> {
  const inner = new AbortController();
  const signal = AbortSignal.any([tree.signal, inner.signal]);
  const steps: FeedStep[] = [];
  let queued = 0;
  let ended = false;
  let readError: unknown;
  let notify: (() => void) | undefined;
  const poke = () => {
    notify?.();
    notify = undefined;
  };
  const until = () => new Promise<void>((r) => (notify = r));

  const reader = (async () => {
    try {
      for await (const step of deps.followChanges(client, { cursor, prefix: tree.remote, signal })) {
        steps.push(step);
        queued += step.changes.length;
        poke();
        while (queued > READ_AHEAD && !signal.aborted) await until();
      }
    } catch (err) {
      readError = err;
    } finally {
      ended = true;
      poke();
    }
  })();

  try {
    for (;;) {
      while (steps.length === 0 && !ended) await until();
      if (steps.length === 0) break;
      const batch = steps.splice(0);
      queued = 0;
      poke();
      const next = batch.at(-1)!.cursor;
      const changes = batch.flatMap((s) => s.changes).filter((c) => inFolder(c, tree.remote));
      if (changes.length > 0) {
        // A path gone from the server since the change (replaying a backlog) is no failure: a later change in the feed says what became of it.
        let superseded = 0;
        const batchEmit: RunListener = (ev) => {
          if (ev.type === "file_failed" && ev.code === "not_found") {
            superseded++;
            emit({ type: "warning", path: ev.path, message: `${ev.path}: gone from the server since this change; a later change in the feed applies` });
          } else emit(ev);
        };
        const r0 = await deps.applyChanges(client, index, { ...tree, signal, delete: true }, coalesce(changes), batchEmit);
        const r = { ...r0, filesFailed: Math.max(0, r0.filesFailed - superseded) };
        totals.add({ ...r, filesFailed: r.filesFailed > 0 && !acceptFailures ? 0 : r.filesFailed }); // a batch tried again counts its failures once
        if (r.filesFailed > 0 && !acceptFailures) throw new BatchFailed(r.filesFailed);
        if (r.filesFailed > 0) emit({ type: "warning", message: `${r.filesFailed} file(s) could not be applied after ${BATCH_ATTEMPTS} tries: moving on; a full pull brings them` });
      }
      acceptFailures = false;
      if (next && next !== cursor) {
        await index.setValue("cursor", next);
        cursor = next;
      }
    }
    if (readError && !tree.signal.aborted) throw readError;
  } finally {
    inner.abort();
    await reader;
  }
}

/**
 * Drops a PUT or ATTRS that a later DELETE or PUT of the same path in the
 * batch replaces: nothing to fetch for content already gone. A path a move
 * touches is left alone, in order.
 */
export function coalesce(changes: Change[]): Change[] {
  const replacedAt = new Map<string, number>();
  const moved = new Set<string>();
  changes.forEach((c, i) => {
    if (c.op === ChangeOp.DELETE || c.op === ChangeOp.PUT) replacedAt.set(c.file?.path ?? "", i);
    if (c.op === ChangeOp.MOVE) moved.add(c.fromPath).add(c.file?.path ?? "");
  });
  const dropped = (c: Change, i: number) => {
    const path = c.file?.path ?? "";
    return (c.op === ChangeOp.PUT || c.op === ChangeOp.ATTRS) && !moved.has(path) && (replacedAt.get(path) ?? -1) > i;
  };
  return changes.filter((c, i) => !dropped(c, i));
}

/** The server's prefix is a string prefix: "photos" also matches "photos2/". */
function inFolder(c: Change, remote: string): boolean {
  if (!remote) return true;
  const under = (p: string) => p === remote || p.startsWith(remote + "/");
  return under(c.file?.path ?? "") || (c.fromPath !== "" && under(c.fromPath));
}
