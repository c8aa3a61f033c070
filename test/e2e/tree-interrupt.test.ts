import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDrive, type CliResult } from "../support/drive-cli.js";
import { storeModes, type ModeServer } from "../support/store-modes.js";

const FILES = 600; // more than two batches (push-tree.ts BATCH), so a kill after the first lands mid-tree

async function contents(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const rel of await readdir(root, { recursive: true })) {
    const abs = join(root, rel);
    const body = await readFile(abs).catch(() => null);
    if (body) out[rel] = createHash("sha256").update(body).digest("hex");
  }
  return out;
}

const local = storeModes.find((m) => m.name === "local")!;

describe("a tree push or pull interrupted, then run again", () => {
  let m: ModeServer;
  let dir: string;
  const drive = (args: string[], onLine?: Parameters<typeof runDrive>[1]["onLine"]) => runDrive(args, { server: m.via, token: m.server.adminToken, cwd: dir, onLine });
  /** Runs the CLI and sends it `signal` when its first file has ended (a batch committed, or a file written). */
  const interrupted = (args: string[], signal: NodeJS.Signals): Promise<CliResult> =>
    drive(["--json", ...args], (line, child) => {
      if (line.type === "file" && !child.killed) child.kill(signal);
    });

  beforeAll(async () => {
    m = await local.start();
    dir = await mkdtemp(join(tmpdir(), "drive-tree-kill-"));
  });
  afterAll(async () => {
    await m?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it.each(["SIGINT", "SIGKILL"] as const)("%s mid-push and mid-pull: the second run completes, nothing duplicated or lost", async (signal) => {
    const src = join(dir, `src-${signal}`);
    for (let d = 0; d < 6; d++) {
      await mkdir(join(src, `d${d}`), { recursive: true });
      for (let f = 0; f < FILES / 6; f++) await writeFile(join(src, `d${d}`, `f${f}.bin`), randomBytes(1024 + f));
    }
    const remote = `killed-${signal}`;
    const first = await interrupted(["push", src, remote], signal);
    expect(first.signal ?? first.code, first.stdout.slice(-500) + first.stderr).toBe(signal === "SIGINT" ? 130 : "SIGKILL");
    const done = first.lines.filter((l) => l.type === "file" && l.action === "sent").length;
    expect(done).toBeLessThan(FILES);

    const again = await drive(["--json", "push", src, remote]);
    expect(again.code, again.stdout.slice(-2000) + again.stderr).toBe(0);
    expect(again.summary!.files_sent + again.summary!.files_skipped).toBe(FILES);
    // Nothing twice: every path has one version, whatever the first run had committed.
    const ls = (await drive(["--json", "ls", "-R", "-l", `${remote}/`])).lines.filter((l) => l.type === "file");
    expect(ls).toHaveLength(FILES);
    expect(ls.every((l) => l.revision === 1)).toBe(true);

    const dst = join(dir, `dst-${signal}`);
    const pull1 = await interrupted(["pull", remote, dst], signal);
    expect(pull1.signal ?? pull1.code).toBe(signal === "SIGINT" ? 130 : "SIGKILL");
    const pull2 = await drive(["--json", "pull", remote, dst]);
    expect(pull2.code, pull2.stdout.slice(-2000) + pull2.stderr).toBe(0);
    expect(pull2.summary!.files_sent + pull2.summary!.files_skipped).toBe(FILES);
    // Nothing lost, nothing half-written, no temporary file left behind.
    expect(await contents(dst)).toEqual(await contents(src));
    expect((await readdir(dst, { recursive: true })).filter((f) => f.endsWith(".drive-partial"))).toEqual([]);
  });
});
