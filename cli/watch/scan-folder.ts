import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { PathFilter } from "../local/types.js";

/**
 * Every file and folder under `rel` (a folder relative to root, "" for the
 * root itself), as relative NFC paths, skipping what the filter leaves out
 * and never following a symlink. These are hints for a new folder the
 * watcher may not have seen into (@parcel/watcher issue #97); pushTree does
 * the real walk.
 */
export async function scanFolder(root: string, rel: string, filter: PathFilter, signal?: AbortSignal): Promise<{ paths: string[]; folders: number }> {
  const paths: string[] = [];
  let folders = 0;
  const stack = [rel];
  while (stack.length > 0) {
    if (signal?.aborted) break;
    const dir = stack.pop()!;
    folders++;
    const entries = await readdir(join(root, dir), { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const path = (dir ? `${dir}/${e.name}` : e.name).normalize("NFC");
      const isDir = e.isDirectory();
      if (filter.excludes(path, isDir)) continue;
      paths.push(path);
      if (isDir) stack.push(dir ? `${dir}/${e.name}` : e.name);
    }
  }
  return { paths, folders };
}
