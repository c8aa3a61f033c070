import { spawn, type ChildProcess } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Writable } from "node:stream";
import { BIN } from "./drive-server.js";
import type { Direction } from "./throttle-proxy.js";

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON lines (when --json was given). */
  lines: Array<Record<string, any>>;
  /** The last {"type":"summary"} line, if any. */
  summary: Record<string, any> | undefined;
}

export interface CliOptions {
  /** Sets DRIVE_SERVER; undefined leaves it unset, for config-file tests. */
  server: string | undefined;
  /** Sets DRIVE_TOKEN; undefined leaves it unset. */
  token: string | undefined;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called with each stdout JSON line as it arrives, and the child, e.g. to kill it mid-transfer. */
  onLine?: (line: Record<string, any>, child: ChildProcess) => void;
  /** Standard input: these bytes, or a writer that feeds the pipe (and ends it when it likes). Default: none. */
  input?: Buffer | ((stdin: Writable, child: ChildProcess) => void);
}

/** Scans the CLI caches (cli/transfer/scan-cache.ts) go here, never to the user's own cache. */
const TEST_CACHE = process.env.DRIVE_CACHE_DIR ?? join(tmpdir(), `drive-test-scans-${process.pid}`);

/** Runs the real `drive` binary against a server, with no config file in the way. */
export function runDrive(args: string[], opts: CliOptions): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, DRIVE_CONFIG: "/nonexistent/drive-test-config.json", DRIVE_CACHE_DIR: TEST_CACHE, DRIVE_SERVER: opts.server, DRIVE_TOKEN: opts.token, ...opts.env },
    stdio: [opts.input ? "pipe" : "ignore", "pipe", "pipe"],
  });
  if (opts.input) {
    // The child may leave before reading it all (a refusal): that is its answer, not the test's failure.
    child.stdin!.on("error", () => undefined);
    if (Buffer.isBuffer(opts.input)) child.stdin!.end(opts.input);
    else opts.input(child.stdin!, child);
  }
  let stdout = "";
  let stderr = "";
  let pending = "";
  child.stdout!.on("data", (c: Buffer) => {
    stdout += c;
    pending += c;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (opts.onLine && line.startsWith("{")) opts.onLine(JSON.parse(line), child);
    }
  });
  child.stderr!.on("data", (c) => (stderr += c));
  return new Promise((resolve) => {
    child.once("close", (code, signal) => {
      const lines = stdout
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, any>);
      resolve({ code, signal, stdout, stderr, lines, summary: lines.filter((l) => l.type === "summary").at(-1) });
    });
  });
}

/**
 * Runs the CLI and sends it `signal` once `bytes` more have crossed
 * `direction` of a throttle proxy on its data path. The link is held there
 * first: the child is only known from its first JSON line, which may come
 * later, and holding makes the point of interruption exact whatever the timing.
 */
export async function runDriveInterrupted(
  args: string[],
  opts: CliOptions,
  direction: Direction,
  bytes: number,
  signal: NodeJS.Signals,
): Promise<CliResult> {
  let held = false;
  void direction.reached(direction.bytes + bytes).then(() => {
    direction.pause();
    held = true;
  });
  try {
    const result = await runDrive(args, {
      ...opts,
      onLine: (_line, child) => {
        if (held && !child.killed) child.kill(signal);
      },
    });
    if (!held) throw new Error("the transfer finished before it could be interrupted");
    return result;
  } finally {
    direction.resume();
  }
}
