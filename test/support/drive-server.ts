import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

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
      if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
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
