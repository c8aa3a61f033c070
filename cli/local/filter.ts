import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import ignore, { type Ignore } from "ignore";
import { PARTIAL_SUFFIX } from "../transfer/pull/local-sources.js";
import { CliError } from "../errors.js";
import type { FilterOptions, PathFilter } from "./types.js";

/** The ignore file at a root, gitignore syntax. It is pushed and pulled like any file unless a rule excludes it. */
export const IGNORE_FILE = ".driveignore";
const MAX_IGNORE_FILE = 1 << 20;

/**
 * Decides by relative path (NFC, slash-separated) what a tree leaves out.
 *
 * Matching is gitignore's, by the `ignore` package rather than a matcher
 * of our own: gitignore has many edge cases (negation, a trailing slash
 * for folders only, a leading or inner slash anchoring, `**`, escapes,
 * trailing spaces), and `ignore` follows git's own tests for them and is
 * maintained. Case-sensitive, as git is on Linux and as remote paths are.
 *
 * - Excluded: what .driveignore, then the --exclude globs, ignore (a later
 *   `!pattern` re-includes, but never under an excluded folder: git's rule,
 *   and the walk never enters an excluded folder anyway).
 * - --include: when any are given, a file is taken only if one matches it
 *   (gitignore syntax too, so `build/` takes all under build); folders are
 *   still walked, so included files deep down are found.
 * - Always excluded: the temporary files of pulls (`*.drive-partial`).
 */
export function createFilter(opts: FilterOptions): PathFilter {
  const ex: Ignore = ignore({ ignorecase: false });
  if (opts.ignoreFile) ex.add(opts.ignoreFile);
  ex.add(opts.exclude);
  const inc: Ignore | null = opts.include.length > 0 ? ignore({ ignorecase: false }).add(opts.include) : null;
  return {
    excludes(path: string, dir: boolean): boolean {
      if (!dir && path.endsWith(PARTIAL_SUFFIX)) return true;
      if (ex.ignores(dir ? path + "/" : path)) return true;
      if (!dir && inc) return !inc.ignores(path);
      return false;
    },
  };
}

/** createFilter with <root>/.driveignore read from disk. */
export async function loadFilter(root: string, opts: Omit<FilterOptions, "ignoreFile">): Promise<PathFilter> {
  return createFilter({ ...opts, ignoreFile: await readIgnoreFile(root) });
}

/**
 * The contents of <root>/.driveignore, or undefined when there is none.
 * Only a regular file: a symlink there is not followed (O_NOFOLLOW), a
 * FIFO would block the read (O_NONBLOCK, then the type check).
 */
export async function readIgnoreFile(root: string): Promise<string | undefined> {
  const path = join(root, IGNORE_FILE);
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return null;
    throw new CliError("usage", `${path}: cannot read it: ${err.code === "ELOOP" ? "it is a symbolic link" : err.message}`, { cause: err });
  });
  if (!fh) return undefined;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new CliError("usage", `${path}: not a regular file`);
    if (st.size > MAX_IGNORE_FILE) throw new CliError("usage", `${path}: over ${MAX_IGNORE_FILE} bytes; is it the right file?`);
    return await fh.readFile("utf8");
  } finally {
    await fh.close();
  }
}
