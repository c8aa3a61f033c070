import { mkdir, open, rename, rm } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { isErrno } from "./fs-errors.js";

/**
 * Flushes a directory's entries, so a rename or create inside it survives a
 * crash. Some platforms cannot fsync a directory; there it is a no-op.
 */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } catch (err) {
    if (!isErrno(err, "EINVAL", "EPERM", "EISDIR", "EBADF")) throw err;
  } finally {
    await fh.close();
  }
}

/**
 * The store's tree is private to the server's user: other local accounts
 * must not read stored parts (README, "The embedded default's files").
 */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** mkdir -p (mode 0700) that also makes every directory it creates durable. */
export async function mkdirDurable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (first === undefined) return;
  // Each new directory's entry lives in its parent: sync from the parent of
  // the first one created down to the parent of the deepest.
  let current = path.resolve(dir);
  const parents: string[] = [];
  const top = path.dirname(path.resolve(first));
  while (current !== top) {
    current = path.dirname(current);
    parents.push(current);
  }
  for (const p of parents.reverse()) await syncDir(p);
}

/** Writes a whole file so that readers see either nothing or all of it. */
export async function writeFileAtomic(file: string, data: string | Buffer): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    const fh = await open(tmp, "wx", PRIVATE_FILE_MODE);
    try {
      await fh.writeFile(data);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Renames directory `src` to `dest`, replacing whatever is there. A directory
 * cannot be renamed over a non-empty one, so an existing `dest` is first
 * moved to `trash` and deleted after: readers see the old tree, briefly
 * nothing, then the new one, and never a mix. Not safe against a concurrent
 * call for the same `dest`; callers hold a lock.
 */
export async function renameDirReplacing(src: string, dest: string, trash: string): Promise<void> {
  try {
    await rename(src, dest);
  } catch (err) {
    if (!isErrno(err, "ENOTEMPTY", "EEXIST")) throw err;
    await rename(dest, trash);
    try {
      await rename(src, dest);
    } catch (err2) {
      await rename(trash, dest).catch(() => {});
      throw err2;
    }
    await rm(trash, { recursive: true, force: true, maxRetries: 3 });
  }
  await syncDir(path.dirname(dest));
}
