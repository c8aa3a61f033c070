import { constants, existsSync, type Stats } from "node:fs";
import { lstat, mkdir, open, readdir, realpath, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { checkRemotePath } from "../../shared/rules/remote-path.js";
import { CliError } from "../errors.js";

/**
 * The fence around a local root, for every write a pull makes: no name
 * that comes from the server or the journal lands outside the root, or
 * through a symlink planted inside it.
 *
 * A name (a path relative to the root) is refused when remote-path.ts
 * refuses it (`..`, `.`, empty segments, absolute, backslashes, NUL and
 * control characters, not NFC, too long), and when one of its segments
 * differs only by Unicode normalisation from a name already in that folder
 * (a `café` in NFD beside the remote `café` in NFC would be two names on
 * Linux and one on macOS; either way, not the file the server means).
 * Folders are listed once per Fence and the listing kept; the names the
 * pull itself makes are added to it (noteWritten).
 *
 * Folders: prepareParent creates missing ones one at a time and lstats
 * each component, refusing a symlink or anything not a folder; after each
 * mkdir the whole chain is checked again, since a component may have been
 * swapped for a link meanwhile.
 *
 * Races, and what is left. Node has no openat(), so a path is resolved
 * anew by each call and a folder could be swapped for a symlink between a
 * check and a write. The defences, strongest first:
 * - pinFolder opens the verified folder (O_DIRECTORY|O_NOFOLLOW), checks
 *   that the descriptor is the very folder the chain check saw (device and
 *   inode), and on Linux hands back /proc/self/fd/N: a path through it
 *   goes to that folder whatever happens to the names above it, so a temp
 *   file made there (O_CREAT|O_EXCL|O_NOFOLLOW) and renamed within it
 *   cannot be sent elsewhere by a link.
 * - verifyFinal checks the chain again right before the rename, and that
 *   nothing but a regular file is in the way.
 * - Without /proc (not Linux), the window is from verifyFinal to the
 *   rename: microseconds, and only someone who can write inside the root
 *   can use it.
 * What no check in user space closes: the pinned folder itself moved out of
 * the root, by someone with write access both inside the root and where it
 * goes; the write then lands in that folder, where that user could have
 * written anyway. verifyFinal after the rename reports such a move.
 */
export class FenceRefused extends CliError {
  constructor(
    readonly path: string,
    readonly why: string,
  ) {
    super("integrity", `refusing to write ${JSON.stringify(path)}: ${why}`, { reason: "FENCE" });
  }
}

interface Id {
  dev: number;
  ino: number;
}

const PROC_FD = process.platform === "linux" && existsSync("/proc/self/fd");

export class Fence {
  /** Folder (absolute) -> NFC name -> the names on disk with that NFC form. */
  private readonly listings = new Map<string, Map<string, string[]>>();
  /** Folders prepareParent verified, with their identity then. */
  private readonly verified = new Map<string, Id>();

  private constructor(
    /** realpath of the root. */
    readonly root: string,
    private readonly rootId: Id,
  ) {}

  /** The root is followed once, here (the user named it); nothing below it ever is. */
  static async open(root: string): Promise<Fence> {
    const real = await realpath(root);
    const st = await lstat(real);
    if (!st.isDirectory()) throw new CliError("usage", `${root}: not a folder`);
    return new Fence(real, { dev: st.dev, ino: st.ino });
  }

  /** The absolute path for `rel`, when its name passes the rules and does not shadow an existing name. */
  async localPathFor(rel: string): Promise<string> {
    const segs = checkName(rel);
    let folder = this.root;
    for (const seg of segs) {
      const names = await this.listing(folder);
      if (!names) break; // the folder does not exist yet: nothing in it to collide with
      const onDisk = names.get(seg);
      const other = onDisk?.find((n) => n !== seg);
      if (other !== undefined) {
        throw new FenceRefused(rel, `${JSON.stringify(seg)} differs only by Unicode normalisation from ${JSON.stringify(other)}, already in ${JSON.stringify(folder)}`);
      }
      folder = join(folder, seg);
    }
    return join(this.root, ...segs);
  }

  /** Creates the missing folders above `rel`, one by one; returns the parent folder's absolute path. */
  async prepareParent(rel: string): Promise<string> {
    await this.localPathFor(rel);
    const segs = rel.split("/").slice(0, -1);
    await this.checkRoot(rel);
    let folder = this.root;
    for (let i = 0; i < segs.length; i++) {
      const next = join(folder, segs[i]!);
      let st = await lstatOrNull(next);
      if (!st) {
        await mkdir(next).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== "EEXIST") throw err;
        });
        this.listingAdd(folder, segs[i]!);
        st = await lstatOrNull(next);
        // A component above may have been swapped for a link while we made this one.
        await this.checkChain(rel, segs.slice(0, i));
      }
      checkFolder(rel, next, st);
      this.verified.set(next, { dev: st!.dev, ino: st!.ino });
      folder = next;
    }
    return folder;
  }

  /**
   * Right before a rename into `rel`: every folder above it still is a real
   * folder, the one prepareParent saw, and nothing but a regular file (or
   * nothing) is at the name. Returns the absolute path.
   */
  async verifyFinal(rel: string): Promise<string> {
    const segs = checkName(rel);
    await this.checkChain(rel, segs.slice(0, -1));
    const final = join(this.root, ...segs);
    const st = await lstatOrNull(final);
    if (st?.isSymbolicLink()) throw new FenceRefused(rel, "a symbolic link is in the way; drive never replaces or writes through one");
    if (st && !st.isFile()) throw new FenceRefused(rel, st.isDirectory() ? "a folder is where the file goes" : "something that is not a regular file is in the way");
    return final;
  }

  /**
   * Before a change to an entry that exists (a delete, a rename away, new
   * attributes, a read to send): every folder above `rel` is a real folder
   * under the root, none a link, and none swapped since this fence checked
   * it. Creates nothing. Returns the absolute path.
   */
  async verifyParents(rel: string): Promise<string> {
    const segs = checkName(rel);
    await this.checkChain(rel, segs.slice(0, -1));
    return join(this.root, ...segs);
  }

  /**
   * Opens the (verified) parent folder of `rel` and returns a path to it
   * that no later swap of a name above can redirect: /proc/self/fd/N on
   * Linux, the plain path elsewhere. Close it when the writes are done.
   */
  async pinFolder(rel: string): Promise<{ path: string; close(): Promise<void> }> {
    const parent = await this.prepareParent(rel);
    let fh: FileHandle;
    try {
      fh = await open(parent, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    } catch (err) {
      throw new FenceRefused(rel, `cannot open its folder: ${(err as Error).message}`);
    }
    const st = await fh.stat();
    const want = parent === this.root ? this.rootId : this.verified.get(parent);
    if (!want || st.dev !== want.dev || st.ino !== want.ino) {
      await fh.close();
      throw new FenceRefused(rel, `its folder ${JSON.stringify(parent)} was replaced while it was checked`);
    }
    return { path: PROC_FD ? `/proc/self/fd/${fh.fd}` : parent, close: () => fh.close() };
  }

  /** The pull made this name: later checks in its folder know it without listing again. */
  noteWritten(rel: string): void {
    const segs = rel.split("/");
    this.listingAdd(join(this.root, ...segs.slice(0, -1)), segs[segs.length - 1]!);
  }

  private async checkRoot(rel: string): Promise<void> {
    const st = await lstatOrNull(this.root);
    if (!st?.isDirectory() || st.dev !== this.rootId.dev || st.ino !== this.rootId.ino) throw new FenceRefused(rel, `the root ${this.root} was replaced or removed`);
  }

  private async checkChain(rel: string, parents: string[]): Promise<void> {
    await this.checkRoot(rel);
    let folder = this.root;
    for (const seg of parents) {
      folder = join(folder, seg);
      const st = await lstatOrNull(folder);
      checkFolder(rel, folder, st);
      const want = this.verified.get(folder);
      if (want && (st!.dev !== want.dev || st!.ino !== want.ino)) throw new FenceRefused(rel, `the folder ${JSON.stringify(folder)} was replaced since it was checked`);
    }
  }

  private async listing(folder: string): Promise<Map<string, string[]> | null> {
    const known = this.listings.get(folder);
    if (known) return known;
    let names: string[];
    try {
      names = await readdir(folder);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") return null;
      throw err;
    }
    const map = new Map<string, string[]>();
    for (const n of names) {
      const nfc = n.normalize("NFC");
      const list = map.get(nfc);
      if (list) list.push(n);
      else map.set(nfc, [n]);
    }
    this.listings.set(folder, map);
    return map;
  }

  private listingAdd(folder: string, name: string): void {
    const map = this.listings.get(folder);
    if (!map) return; // never listed: it will be listed when first needed
    const list = map.get(name);
    if (!list) map.set(name, [name]);
    else if (!list.includes(name)) list.push(name);
  }
}

/** One-off forms of the Fence methods, for a single path. */
export async function localPathFor(root: string, rel: string): Promise<string> {
  return (await Fence.open(root)).localPathFor(rel);
}
export async function prepareParent(root: string, rel: string): Promise<string> {
  return (await Fence.open(root)).prepareParent(rel);
}
export async function verifyFinal(root: string, rel: string): Promise<string> {
  return (await Fence.open(root)).verifyFinal(rel);
}

function checkName(rel: string): string[] {
  const why = checkRemotePath(rel);
  if (why) throw new FenceRefused(rel, why);
  return rel.split("/");
}

function checkFolder(rel: string, path: string, st: Stats | null): void {
  if (!st) throw new FenceRefused(rel, `the folder ${JSON.stringify(path)} vanished`);
  if (st.isSymbolicLink()) throw new FenceRefused(rel, `${JSON.stringify(path)} is a symbolic link; drive never writes through one`);
  if (!st.isDirectory()) throw new FenceRefused(rel, `${JSON.stringify(path)} is a file where a folder is expected`);
}

async function lstatOrNull(path: string): Promise<Stats | null> {
  try {
    return await lstat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    throw err;
  }
}
