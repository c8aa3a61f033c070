import { stat } from "node:fs/promises";
import type { CommandContext } from "../commands/context.js";
import { IGNORE_FILE_NAME } from "./ignore-file.js";
import type { PathFilter } from "../local/types.js";
import type { DriveClient } from "../rpc/drive-client.js";
import type { RunListener } from "../transfer/events.js";
import { TreeRefused, type TreeOptions, type TreeResult } from "../tree/types.js";
import { Totals } from "./totals.js";
import { indexKey } from "./index-key.js";
import { watchLocal } from "./local-watcher.js";
import { RideOut } from "./ride-out.js";
import { SettleQueue } from "./settle-queue.js";
import type { WatchOptions } from "./types.js";
import type { WatchDeps } from "./watch-deps.js";
import { Wake } from "./wake.js";

/** Default settle time: a file untouched this long is taken as written. */
export const SETTLE_MS = 1_000;
/** Hints are gathered this long before they are looked at, so a burst becomes one batch. */
const DEBOUNCE_MS = 25;

/**
 * push --watch: one pushTree of the whole tree, then pushTree again with
 * `only` the paths the watcher named, once each has settled; a full pushTree
 * on every rescan (periodic, watcher error, polling). The watcher starts
 * before the first push, so nothing changed during it goes unseen. One
 * pushTree runs at a time; hints that come meanwhile wait for the next. Ends
 * when the signal aborts, with every round's result added up.
 */
export async function watchPush(deps: WatchDeps, ctx: CommandContext, client: DriveClient, opts: WatchOptions, emit: RunListener): Promise<TreeResult> {
  const signal = AbortSignal.any([ctx.signal, opts.signal]);
  const settleMs = opts.settleMs ?? SETTLE_MS;
  let tree: TreeOptions = { ...opts, settleMs, signal };
  let filter: PathFilter = deps.createFilter(opts.filter);
  const root = await stat(opts.local).catch(() => null);
  if (!root) throw new TreeRefused(`${opts.local} does not exist`, "missing_root");
  if (!root.isDirectory()) throw new TreeRefused(`${opts.local} is not a folder: push --watch watches folders`, "not_a_folder");
  const index = await deps.openIndex(await indexKey(client, opts));
  const queue = new SettleQueue(opts.local, settleMs);
  const wake = new Wake();
  const rideOut = new RideOut(emit, signal);
  const totals = new Totals();
  let full = true;
  let local;
  try {
    local = await watchLocal({
      root: opts.local,
      filter: () => filter,
      rescanMs: opts.rescanMs,
      signal,
      emit,
      onHints: (paths) => {
        queue.add(paths);
        wake.kick(DEBOUNCE_MS);
      },
      onRescan: () => {
        full = true;
        wake.kick(0);
      },
    });

    // One round: a full push, or the settled paths; false when it must wait (aborted, or riding out an error).
    const round = async (only: string[] | undefined): Promise<void> => {
      try {
        const r = await deps.pushTree(client, index, { ...tree, only }, emit);
        totals.add(r);
        queue.add(r.unsettled);
        rideOut.ok();
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof TreeRefused) {
          emit({ type: "warning", message: `not pushed: ${err.message}` });
          return;
        }
        if (only) queue.add(only);
        else full = true;
        await rideOut.failed(err, "push");
      }
    };

    while (!signal.aborted) {
      if (full) {
        full = false;
        await round(undefined);
        continue;
      }
      const { ready, nextMs } = await queue.take();
      if (ready.includes(IGNORE_FILE_NAME)) {
        // New ignore rules change what the tree holds: take them, and look at everything again.
        const ignoreFile = await deps.readIgnoreFile(opts.local);
        tree = { ...tree, filter: { ...tree.filter, ignoreFile } };
        filter = deps.createFilter(tree.filter);
        full = true;
        continue;
      }
      if (ready.length > 0) {
        await round(ready);
        continue;
      }
      await wake.wait(nextMs, signal);
    }
    return totals.result;
  } finally {
    await local?.close();
    await index.close();
  }
}
