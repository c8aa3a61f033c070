import { open, readFile, rm } from "node:fs/promises";
import { CliError } from "../errors.js";

/**
 * One process per sync root: an exclusive lock file holding the owner's
 * pid. LMDB serialises writers, but two syncs interleaving their rounds
 * would each plan against trees the other is changing. A lock whose pid is
 * dead (a sync killed with -9) is stale and taken over.
 */
export async function takeLock(file: string, root: string): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(file, "wx", 0o600);
      try {
        await fh.writeFile(`${process.pid}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      return () => rm(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new CliError("internal", `${file}: cannot take the sync lock: ${(err as Error).message}`, { cause: err });
      }
    }
    const pid = Number.parseInt(await readFile(file, "utf8").catch(() => ""), 10);
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
      throw new CliError("usage", `another drive sync is running on ${root} (pid ${pid}); wait for it to finish, or stop it (if no such sync runs, remove ${file})`);
    }
    // Dead owner, or a lock torn before its pid was written: stale.
    await rm(file, { force: true });
  }
  throw new CliError("usage", `another drive sync is running on ${root} (its lock ${file} keeps coming back)`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
