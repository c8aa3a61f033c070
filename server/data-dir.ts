import { randomBytes } from "node:crypto";
import { chmod, lstat, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "./log.js";

/**
 * The data folder belongs to one server process at a time: two servers on
 * one embedded PostgreSQL or one local blob store would corrupt both.
 * A pid file marks the owner; a pid file whose process is gone is stale.
 */
export async function lockDataDir(dir: string, log?: Logger): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (log) await checkDataDirModes(dir, log);
  const file = join(dir, "server.pid");
  try {
    await writeFile(file, `${process.pid}\n`, { flag: "wx" });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const owner = Number((await readFile(file, "utf8")).trim());
    if (owner !== process.pid && (await isNodeProcess(owner))) {
      throw new Error(`data folder ${dir} is in use by another drive server (pid ${owner})`);
    }
    await writeFile(file, `${process.pid}\n`);
  }
  return () => rm(file, { force: true });
}

async function isNodeProcess(pid: number): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8");
    return /node|drive/.test(cmdline);
  } catch {
    return false;
  }
}

/** A random secret kept in the data folder, made on first use (mode 0600). */
export async function dataDirSecret(dir: string, name: string): Promise<Buffer> {
  const file = join(dir, name);
  try {
    return Buffer.from((await readFile(file, "utf8")).trim(), "base64url");
  } catch {
    const secret = randomBytes(32);
    await writeFile(file, secret.toString("base64url") + "\n", { mode: 0o600, flag: "wx" });
    return secret;
  }
}

const ID_FILE = "data-dir.id";

/**
 * The data folder's identity: a random id made on first use and kept in the
 * folder. What lives outside the folder for it (the embedded PostgreSQL's
 * cluster, under root) is tied to it by this id, never by the folder's path:
 * a folder deleted and made again at the same path is a new folder.
 */
export async function readDataDirId(dir: string): Promise<string | null> {
  const id = await readFile(join(dir, ID_FILE), "utf8").then((t) => t.trim(), () => "");
  return /^[0-9a-f-]{36}$/.test(id) ? id : null;
}

export async function writeDataDirId(dir: string, id: string): Promise<void> {
  await writeFile(join(dir, ID_FILE), id + "\n", { mode: 0o600 });
}

/** Files in the data folder that are secrets: each must be readable by the server's user alone. */
const SECRETS = ["admin.token", "blob.key", "postgres.password"];

/**
 * Warns when the data folder is open to other local users (it holds the
 * admin token, the URL signing key, PostgreSQL's password and, in the
 * embedded default, every stored file), and makes its secret files 0600
 * again if something opened them. The folder's own mode is the user's to
 * set, so it is only reported: 0700, or 0711 as root, which PostgreSQL's own
 * user needs to reach its cluster inside it.
 */
export async function checkDataDirModes(dir: string, log: Logger): Promise<void> {
  const mode = (await stat(dir)).mode & 0o777;
  if (mode & 0o066) {
    log.warn(`the data folder is open to other local users (mode ${mode.toString(8)}); run chmod 700 on it`, { dir });
  }
  for (const name of SECRETS) {
    const file = join(dir, name);
    const st = await lstat(file).catch(() => null);
    if (!st?.isFile() || (st.mode & 0o077) === 0) continue;
    await chmod(file, 0o600);
    log.warn("a secret in the data folder was readable by other local users; made it 0600", { file, was: (st.mode & 0o777).toString(8) });
  }
}
