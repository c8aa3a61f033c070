import { invalid } from "../errors.js";
import { quote } from "../rpc/request-limits.js";

/** Items per TreeService batch call (tree.proto). */
export const MAX_TREE_ITEMS = 1000;
/** small_file_max: the largest file BeginPuts takes; larger ones go through UploadService. */
export const SMALL_FILE_MAX = 8 * 1024 * 1024;
/** Chunks per PutItem: 8 MiB of the smallest chunks but the last. */
export const MAX_PUT_CHUNKS = 32;

/**
 * The caps every batch shares, checked before any work: 1 to 1,000 items,
 * each key (a path, an upload id) at most once.
 */
export function checkBatch(keys: readonly string[], field: string, what = "path"): void {
  if (keys.length === 0) throw invalid(`${field} is empty`);
  if (keys.length > MAX_TREE_ITEMS) throw invalid(`${field} has ${keys.length} entries, over the ${MAX_TREE_ITEMS} maximum`);
  const seen = new Set<string>();
  for (const k of keys) {
    if (seen.has(k)) throw invalid(`${field} names the ${what} ${quote(k)} twice`);
    seen.add(k);
  }
}
