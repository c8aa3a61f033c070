import { followChanges } from "../feed/follow.js";
import type { FollowChanges } from "../feed/types.js";
import { createFilter, readIgnoreFile } from "../local/filter.js";
import type { FilterOptions, PathFilter } from "../local/types.js";
import { watchLocal } from "../watch/local-watcher.js";
import { executePlan } from "./execute.js";
import { checkRoots, readMarker } from "./guard.js";
import { planSync } from "./plan.js";
import { refreshRemote } from "./remote-tree.js";
import { scanLocal } from "./scan-local.js";
import { openSyncState } from "./state-store.js";
import type { CheckRoots, ExecutePlan, MarkerContent, OpenSyncState, PlanSync, RefreshRemote, ScanLocal } from "./types.js";

/**
 * What sync-run.ts, sync-watch.ts and `drive status` use from the other
 * parts of cli/sync/ and from cli/local/, cli/feed/ and cli/watch/, as one
 * object: the commands pass syncDeps, the tests in-memory fakes.
 */
export interface SyncDeps {
  openState: OpenSyncState;
  scanLocal: ScanLocal;
  refreshRemote: RefreshRemote;
  checkRoots: CheckRoots;
  /** What <root>/.drive-sync says, or null when there is none (or it is not ours). */
  readMarker(root: string): Promise<MarkerContent | null>;
  planSync: PlanSync;
  executePlan: ExecutePlan;
  /** Only to wake a watch: the changes themselves are read by refreshRemote. */
  followChanges: FollowChanges;
  watchLocal: typeof watchLocal;
  createFilter: (opts: FilterOptions) => PathFilter;
  /** Contents of <root>/.driveignore, or undefined. */
  readIgnoreFile: (root: string) => Promise<string | undefined>;
}

export const syncDeps: SyncDeps = {
  openState: openSyncState,
  scanLocal,
  refreshRemote,
  checkRoots,
  readMarker,
  planSync,
  executePlan,
  followChanges,
  watchLocal,
  createFilter,
  readIgnoreFile,
};
