import { chmod, lstat, readdir } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "../../log.js";
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from "./durable-fs.js";

/**
 * Makes an existing store tree private: folders 0700, files 0600. Servers
 * before this one made it with the default modes (0755, 0644), so any local
 * account could read stored parts. The store now makes everything private,
 * so a tree whose root is private is left alone: the whole walk, one lstat
 * per file, runs only when the root is open, and the root is fixed last, so
 * a walk cut short runs again at the next start. Symlinks are not followed.
 */
export async function makeTreePrivate(root: string, log: Logger): Promise<void> {
  const top = await lstat(root).catch(() => null);
  if (!top?.isDirectory() || (top.mode & 0o077) === 0) return;
  const fixed = { dirs: 0, files: 0 };
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        await tighten(p, PRIVATE_DIR_MODE, () => fixed.dirs++);
        await walk(p);
      } else if (entry.isFile()) {
        await tighten(p, PRIVATE_FILE_MODE, () => fixed.files++);
      }
    }
  };
  await walk(root);
  await chmod(root, PRIVATE_DIR_MODE);
  fixed.dirs++;
  log.warn("the blob store was readable by other local users; made it private (folders 0700, files 0600)", {
    dir: root,
    was: (top.mode & 0o777).toString(8),
    folders_fixed: fixed.dirs,
    files_fixed: fixed.files,
  });
}

async function tighten(p: string, mode: number, counted: () => void): Promise<void> {
  const st = await lstat(p);
  if ((st.mode & 0o077) === 0) return;
  await chmod(p, mode);
  counted();
}
