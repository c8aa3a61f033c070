import { lstat, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { CliError } from "../../errors.js";

/** Where `drive pull REMOTE [LOCAL]` writes: LOCAL, or into it when it is a folder. */
export async function resolvePullTarget(remote: string, local: string | undefined): Promise<string> {
  const name = basename(remote);
  let target = local ?? name;
  if (local?.endsWith("/")) target = join(local, name);
  else if (local && (await stat(local).catch(() => null))?.isDirectory()) target = join(local, name);
  // A FIFO, socket or device at the destination is not ours to replace with a file.
  const existing = await lstat(target).catch(() => null);
  if (existing && !existing.isFile() && !existing.isSymbolicLink()) throw new CliError("usage", `${target} exists and is not a regular file; refusing to replace it`);
  const folder = await stat(dirname(target)).catch(() => null);
  if (!folder?.isDirectory()) throw new CliError("not_found", `destination folder ${dirname(target)} does not exist`);
  return target;
}
