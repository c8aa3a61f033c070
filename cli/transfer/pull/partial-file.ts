import { constants } from "node:fs";
import { lstat, open, rename, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { CliError } from "../../errors.js";
import { PARTIAL_SUFFIX, type LocalSource } from "./local-sources.js";

/**
 * The temporary file a pull writes beside its destination, named for the
 * destination and the content: `.NAME.HASH16.drive-partial`. Its name is
 * predictable, and in a shared folder another user could plant a link
 * there for our pull to write through, so everything about it is checked:
 * see openPartial.
 */
export function partialName(dest: string, contentHashHex: string): string {
  return join(dirname(dest), `.${boundedName(basename(dest))}.${contentHashHex.slice(0, 16)}${PARTIAL_SUFFIX}`);
}

/** Names are at most 255 bytes; the temporary name adds 32, so a long name gives up its tail (the hash keeps it unique). */
const MAX_NAME_PART = 255 - 1 - 1 - 16 - PARTIAL_SUFFIX.length;

function boundedName(name: string): string {
  if (Buffer.byteLength(name) <= MAX_NAME_PART) return name;
  let out = "";
  for (const ch of name) {
    if (Buffer.byteLength(out + ch) > MAX_NAME_PART) break;
    out += ch;
  }
  return out;
}

export interface Partial {
  fh: FileHandle;
  /** The rename goes by name: checks that the name still is the file we wrote and verified. */
  checkStillOurs(): Promise<void>;
}

/**
 * Takes over the leftover of an earlier, interrupted pull of the same
 * content, if there is one: it is checked as the temporary file always was
 * (a regular file of ours with one link, not a symlink, not a FIFO), then
 * unlinked and kept open as a source. The pull writes a fresh file under
 * the name; chunks of the leftover that still verify are copied into it.
 */
export async function takeLeftover(temp: string): Promise<LocalSource | null> {
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
  let fh: FileHandle;
  try {
    fh = await open(temp, flags);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    if (code === "ELOOP") throw refuse(temp, "it is a symbolic link", err);
    throw err;
  }
  try {
    const st = await fh.stat();
    checkOurs(temp, st);
    const now = await lstat(temp);
    if (now.ino !== st.ino || now.dev !== st.dev) throw refuse(temp, "it was replaced while it was opened");
    // The name is free for the fresh file; the inode lives on while it is open.
    await unlink(temp);
    return { path: temp, fh, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, dev: st.dev, changed: false };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/**
 * Creates the temporary file, fresh: O_EXCL refuses anything already at
 * the name (a file, a symlink, a FIFO planted since the leftover was
 * taken), O_NOFOLLOW a symlink, and the mode keeps it ours alone.
 */
export async function createPartial(temp: string): Promise<Partial> {
  const flags = constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | constants.O_NONBLOCK;
  let fh: FileHandle;
  try {
    fh = await open(temp, flags, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST" || code === "ELOOP") throw refuse(temp, "something else took its name during the pull", err);
    throw err;
  }
  const st = await fh.stat();
  return {
    fh,
    async checkStillOurs() {
      const now = await lstat(temp).catch(() => null);
      if (!now || now.ino !== st.ino || now.dev !== st.dev) throw refuse(temp, "it was replaced during the pull");
    },
  };
}

/** The last step of a pull: the temporary file, still ours, becomes the destination, and the folder records it. */
export async function renameIntoPlace(partial: Partial, temp: string, dest: string): Promise<void> {
  await partial.checkStillOurs();
  await rename(temp, dest);
  await syncDir(dirname(dest));
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, "r").catch(() => null);
  if (!d) return;
  await d.sync().catch(() => undefined); // not every filesystem can fsync a folder
  await d.close();
}

function checkOurs(temp: string, st: { isFile(): boolean; uid: number; nlink: number }): void {
  const uid = process.getuid?.();
  if (!st.isFile()) throw refuse(temp, "it is not a regular file");
  if (uid !== undefined && st.uid !== uid) throw refuse(temp, `it belongs to another user (uid ${st.uid})`);
  if (st.nlink !== 1) throw refuse(temp, `it has ${st.nlink} links, so it is another file's name too`);
}

function refuse(temp: string, why: string, cause?: unknown): CliError {
  return new CliError("internal", `${temp}: refusing to use the temporary file: ${why}; remove it and run the pull again`, { cause });
}
