/**
 * Change propagation latency (issue 9, section 6): client A pushes a file,
 * client B runs `drive pull --watch`; each change is timed from the end of
 * A's push until the file is complete in B's folder (renamed into place,
 * content checked), over BENCH_CHANGES (default 100) changes, one at a time.
 * Two starting points are reported: A's process exit, and the commit time
 * the server recorded (FileInfo.modified_at; same machine, same clock),
 * which leaves out A's own exit. Not a test: it prints p50, p99 and max.
 * Called by `npm run bench:sync`; alone: `npm run build && tsx bench/watch-latency.ts`.
 */
import { spawn } from "node:child_process";
import { watch as fsWatch } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { connectDrive } from "../cli/rpc/drive-client.js";
import { startDriveServer } from "../test/support/drive-server.js";

const CHANGES = Number(process.env.BENCH_CHANGES ?? 100);
const BIN = join(import.meta.dirname, "..", "bin", "drive.js");

function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ["ignore", "ignore", "inherit"] });
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(Date.now()) : reject(new Error(`drive ${args.join(" ")} exited ${code}`))));
  });
}

/** Resolves with the time `path` first holds `content`, watching its folder and polling as a backstop. */
function arrival(folder: string, name: string, content: string): Promise<number> {
  return new Promise((resolve) => {
    let done = false;
    const check = async () => {
      if (done) return;
      const text = await readFile(join(folder, name), "utf8").catch(() => undefined);
      if (text === content && !done) {
        done = true;
        const at = Date.now();
        watcher.close();
        clearInterval(poll);
        resolve(at);
      }
    };
    const watcher = fsWatch(folder, () => void check());
    const poll = setInterval(() => void check(), 5);
    void check();
  });
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;

async function main(): Promise<void> {
  const server = await startDriveServer();
  const dir = await mkdtemp(join(tmpdir(), "drive-bench-watch-"));
  const env = { ...process.env, DRIVE_CONFIG: "/nonexistent/drive-bench.json", DRIVE_CACHE_DIR: join(dir, "cache"), DRIVE_SERVER: server.url, DRIVE_TOKEN: server.adminToken };
  const rpc = connectDrive({ server: server.url, token: server.adminToken });
  const a = join(dir, "a");
  const mirror = join(dir, "mirror");
  await mkdir(a);
  await writeFile(join(a, "seed.txt"), "seed");
  await run(["push", a, "w"], env);
  const b = spawn(process.execPath, [BIN, "--json", "pull", "--watch", "w", mirror], { env, stdio: ["ignore", "ignore", "inherit"] });
  try {
    await arrival(await waitForFolder(mirror), "seed.txt", "seed");
    const fromExit: number[] = [];
    const fromCommit: number[] = [];
    for (let i = 0; i < CHANGES; i++) {
      const name = `change-${i}.txt`;
      const content = `change ${i} ${Math.random()}\n`.repeat(1 + (i % 50));
      await writeFile(join(a, name), content);
      const landed = arrival(mirror, name, content);
      const exited = await run(["push", join(a, name), `w/${name}`], env);
      const at = await landed;
      const stat = await rpc.files.stat({ path: `w/${name}` });
      fromExit.push(at - exited);
      fromCommit.push(at - timestampMs(stat.file!.modifiedAt!));
    }
    const line = (label: string, xs: number[]) => `${label}: p50 ${pct(xs, 50)} ms, p99 ${pct(xs, 99)} ms, max ${Math.max(...xs)} ms`;
    console.log(`change propagation latency, ${CHANGES} changes, push on A to complete on B under pull --watch (goal p50 < 150 ms, p99 < 500 ms)`);
    console.log(`  ${line("from the server's commit", fromCommit)}`);
    console.log(`  ${line("from A's push exiting", fromExit)} (can be negative: B may finish before A's process is gone)`);
  } finally {
    b.kill("SIGINT");
    await new Promise((r) => b.once("exit", r));
    rpc.close();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function waitForFolder(path: string): Promise<string> {
  for (let i = 0; i < 3000; i++) {
    if (await readFile(join(path, "seed.txt")).then(() => true, () => false)) return path;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${path} never got its first pull`);
}

await main();
