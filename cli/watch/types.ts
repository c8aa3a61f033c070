import type { CommandContext } from "../commands/context.js";
import type { DriveClient } from "../rpc/drive-client.js";
import type { RunListener } from "../transfer/events.js";
import type { TreeOptions } from "../tree/types.js";

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

export type RunWatch = (ctx: CommandContext, client: DriveClient, opts: WatchOptions, emit: RunListener) => Promise<void>;
