/** The batch and lane sizes push-tree.ts and pull-tree.ts share. */

/** Items per BeginPuts, CommitPuts, DeletePaths and GetDownloads call (tree.proto caps them at 1,000; smaller batches overlap better). */
export const BATCH = 250;
/** Batches of small files in flight at once: one reads while another's transfers run and a third commits. */
export const BATCHES_IN_FLIGHT = 3;
/** Large files in flight at once; their parts share the tree's pool. */
export const LARGE_LANES = 3;
