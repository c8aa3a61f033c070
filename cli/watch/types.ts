import type { CommandContext } from "../commands/context.js";
import type { DriveClient } from "../rpc/drive-client.js";
import type { RunListener } from "../transfer/events.js";
import type { TreeOptions, TreeResult } from "../tree/types.js";

/**
 * `drive push --watch` and `drive pull --watch` (cli/watch/): contract
 * between cli/watch/ and the push and pull commands, which parse the flags
 * and call these. Each runs until ctx.signal fires, then resolves (an
 * interrupted watch is a normal end, exit 0 after its summary) or rejects on
 * an error it cannot ride out.
 */
export interface WatchOptions extends TreeOptions {
  /** Full rescans at this interval, with jitter; 0 disables. Default 60 s. */
  rescanMs: number;
}

/**
 * Resolves with what the whole watch did, every round added up, for the
 * summary (changed in issue 9 by hwatch from Promise<void>; a caller that
 * ignores it still compiles). Unchanged files count as skipped once, in the
 * first round, not again on every rescan.
 */
export type RunWatch = (ctx: CommandContext, client: DriveClient, opts: WatchOptions, emit: RunListener) => Promise<TreeResult>;
