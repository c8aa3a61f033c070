import type { FollowChanges } from "../feed/types.js";
import type { FilterOptions, IndexKey, IsUnchanged, LocalIndex, PathFilter } from "../local/types.js";
import type { ApplyChanges, PullTree, PushTree } from "../tree/types.js";

/**
 * What the watch loops use from cli/tree/, cli/feed/ and cli/local/, as one
 * object: push-watch.ts and pull-watch.ts pass the real ones.
 */
export interface WatchDeps {
  pushTree: PushTree;
  pullTree: PullTree;
  applyChanges: ApplyChanges;
  followChanges: FollowChanges;
  openIndex: (key: IndexKey) => Promise<LocalIndex>;
  createFilter: (opts: FilterOptions) => PathFilter;
  /** Contents of <root>/.driveignore, or undefined. */
  readIgnoreFile: (root: string) => Promise<string | undefined>;
  isUnchanged: IsUnchanged;
}
