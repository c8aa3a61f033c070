/**
 * The slice of cli/local/ the tree uses: walk, filter, fence and the
 * unchanged test, named as the tree calls them.
 */
export { walkAll as walk } from "../local/walk.js";
export { createFilter as makeFilter } from "../local/filter.js";
export { isUnchanged } from "../local/unchanged.js";
export { Fence, FenceRefused } from "../local/fence.js";
