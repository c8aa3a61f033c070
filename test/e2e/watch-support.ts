import { spawn, type ChildProcess } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { connectDrive, type DriveClient } from "../../cli/rpc/drive-client.js";
import { BIN } from "../support/drive-server.js";

/** A `drive … --watch` process that runs until the test stops it. */
export interface WatchProcess {
  child: ChildProcess;
  /** JSON lines so far. */
  lines: Array<Record<string, any>>;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends sig and waits for the exit. */
  stop(sig: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const CACHE = join(tmpdir(), `drive-test-scans-${process.pid}`);

export function startWatch(args: string[], opts: { server: string; token: string; cwd?: string; env?: NodeJS.ProcessEnv }): WatchProcess {
  const child = spawn(process.execPath, [BIN, "--json", ...args], {
    cwd: opts.cwd,
    env: { ...process.env, DRIVE_CONFIG: "/nonexistent/drive-test-config.json", DRIVE_CACHE_DIR: CACHE, DRIVE_SERVER: opts.server, DRIVE_TOKEN: opts.token, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  let pending = "";
  const lines: Array<Record<string, any>> = [];
  child.stdout!.on("data", (c: Buffer) => {
    out += c;
    pending += c;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.startsWith("{")) lines.push(JSON.parse(line));
    }
  });
  child.stderr!.on("data", (c) => (err += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("close", (code, signal) => resolve({ code, signal })));
  return {
    child,
    lines,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop(sig) {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
      return exited;
    },
  };
}

/** Polls until cond holds; the failure says what was awaited and, from describe(), what was seen. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, describe?: () => unknown, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${describe ? `; saw ${JSON.stringify(await describe())}` : ""}`);
    await new Promise((r) => setTimeout(r, 15));
  }
}

/** A folder's files (path -> content) and folders (path -> "/"), hidden temporaries left out. */
export async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string) => {
    for (const e of await readdir(join(root, rel), { withFileTypes: true }).catch(() => [])) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.name.endsWith(".drive-partial")) continue; // a pull's temporary (a killed one leaves them)
      if (e.isDirectory()) {
        out[p] = "/";
        await walk(p);
      } else if (e.isFile()) {
        const text = await readFile(join(root, p), "utf8").catch(() => undefined);
        if (text !== undefined) out[p] = text;
      }
    }
  };
  await walk("");
  return out;
}

/** Only the files of a snapshot. */
export function files(snap: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(snap).filter(([, v]) => v !== "/"));
}

export function blake3(data: string | Buffer): Buffer {
  return Buffer.from(new Blake3Hasher().update(Buffer.from(data)).digest("hex"), "hex");
}

export function client(server: string, token: string): DriveClient {
  return connectDrive({ server, token });
}
