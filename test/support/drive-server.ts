import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readdir, readFile, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { OUTSIDE_ROOT } from "../../server/metadata/cluster-home.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const BIN = join(ROOT, "bin", "drive.js");

export interface TestServer {
  url: string;
  dataDir: string;
  /** The admin token this server wrote at first start; "" when another instance made the admin. */
  adminToken: string;
  process: ChildProcess;
  /** Server log lines (JSON) so far, for assertions and for failures. */
  logs(): string;
  stop(): Promise<void>;
  /** SIGKILL, leaving the data folder as a crash would. */
  kill(): Promise<void>;
  /** Starts it again (after kill() or stop()) on the same data folder, port and settings, as an operator would after a crash. */
  restart(): Promise<TestServer>;
}

export interface Exited {
  code: number | null;
  stdout: string;
  stderr: string;
  /** True when it got as far as listening, which these runs must not. */
  started: boolean;
}

/**
 * Runs `drive server` expecting it to give up. Should it start serving
 * instead, it is stopped at once and `started` says so, so a regression
 * fails the test rather than leaving a server behind.
 */
export function runServerToExit(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Exited> {
  const child = spawn(process.execPath, [BIN, "server", "--log-level", "info", ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let stdout = "";
  let stderr = "";
  let started = false;
  child.stdout.on("data", (c) => {
    stdout += c;
    if (!started && /listening on/.test(stdout)) {
      started = true;
      child.kill("SIGTERM");
    }
  });
  child.stderr.on("data", (c) => (stderr += c));
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr, started })));
}

export interface StartOptions {
  dataDir?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
}

/** Starts `drive server` as a real process on a free port, on the embedded default unless told otherwise. */
export async function startDriveServer(opts: StartOptions = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), "drive-e2e-")));
  return start(opts, dataDir, !opts.dataDir, "127.0.0.1:0");
}

async function start(opts: StartOptions, dataDir: string, ownsDataDir: boolean, listen: string): Promise<TestServer> {
  const child = spawn(process.execPath, [BIN, "server", "--data-dir", dataDir, "--listen", listen, "--log-level", "info", ...(opts.args ?? [])], {
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr!.on("data", (c) => (err += c));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}\n${err}`)), 60_000);
    child.stdout!.on("data", (c) => {
      out += c;
      const m = /listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}\n${err}`));
    });
  });
  // Only the instance that created the admin has the token; others sharing its database get "".
  const adminToken = await readFile(join(dataDir, "admin.token"), "utf8").then((t) => t.trim(), () => "");
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    url,
    dataDir,
    adminToken,
    process: child,
    logs: () => err,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
      if (ownsDataDir) await removeDataDir(dataDir);
    },
    async kill() {
      if (child.exitCode === null) child.kill("SIGKILL");
      await exited;
    },
    async restart() {
      if (child.exitCode === null) child.kill("SIGKILL");
      await exited;
      return start(opts, dataDir, ownsDataDir, new URL(url).host);
    },
  };
}

/**
 * Removes a data folder the way a test must: with the embedded PostgreSQL's
 * cluster when it lives outside (under root with a private parent, in
 * /var/lib/drive), and with any postmaster a killed server left running on it.
 */
export async function removeDataDir(dataDir: string): Promise<void> {
  const link = await readlink(join(dataDir, "postgres")).catch(() => null);
  const cluster = link ?? join(dataDir, "postgres");
  await stopLeftoverPostmaster(cluster);
  if (link?.startsWith(`${OUTSIDE_ROOT}/`)) {
    // Only the cluster this folder's id names: /var/lib/drive/<id>/postgres.
    const id = (await readFile(join(dataDir, "data-dir.id"), "utf8").catch(() => "")).trim();
    if (id && link === join(OUTSIDE_ROOT, id, "postgres")) await rm(dirname(link), { recursive: true, force: true });
  }
  await rm(dataDir, { recursive: true, force: true });
}

/** SIGQUIT to the postmaster in postmaster.pid, if it still runs: what a SIGKILLed server leaves behind. */
async function stopLeftoverPostmaster(cluster: string): Promise<void> {
  const pid = Number((await readFile(join(cluster, "postmaster.pid"), "utf8").catch(() => "")).split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  const isPostgres = () => readFile(`/proc/${pid}/status`, "utf8").then((t) => /^Name:\s*postgres/m.test(t) && !/^State:\s*Z/m.test(t), () => false);
  if (!(await isPostgres())) return;
  process.kill(pid, "SIGQUIT");
  for (let i = 0; i < 100 && (await isPostgres()); i++) await new Promise((r) => setTimeout(r, 50));
}

/** Pids of postmasters serving `<dataDir>/postgres`, found by their command line. */
export async function postmastersOf(dataDir: string): Promise<number[]> {
  const target = join(dataDir, "postgres");
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const argv: string[] = await readFile(`/proc/${entry}/cmdline`, "utf8").then((t) => t.split("\0"), () => []);
    const d = argv.indexOf("-D");
    if (d >= 0 && argv[d + 1] === target && /postgres$/.test(argv[0] ?? "")) pids.push(Number(entry));
  }
  return pids;
}
