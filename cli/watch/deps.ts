import { followChanges } from "../feed/follow.js";
import { createFilter, readIgnoreFile } from "../local/filter.js";
import { isUnchanged } from "../local/unchanged.js";
import { applyChanges } from "../tree/apply-changes.js";
import { pullTree } from "../tree/pull-tree.js";
import { pushTree } from "../tree/push-tree.js";
import { openTreeIndex } from "../tree/tree-command.js";
import type { WatchDeps } from "./watch-deps.js";

/** The real parts, for push-watch.ts and pull-watch.ts; the index is the one the tree commands open, so a plain push or pull and a watch share it. */
export const watchDeps: WatchDeps = { pushTree, pullTree, applyChanges, followChanges, openIndex: (key) => openTreeIndex(key.server, key.remoteRoot, key.localRoot), createFilter, readIgnoreFile, isUnchanged };
