/**
 * Two-way sync figures (issue 10, section 4), for `npm run bench:sync`
 * (BENCH_PARTS includes "sync"); alone: `npm run build && tsx bench/sync-two-way.ts`.
 * Two clients, A and B, each with its own local folder and DRIVE_CACHE_DIR,
 * sync one remote folder of BENCH_FILES (10,000) files of BENCH_FILE_SIZE:
 *
 * 1. the first sync of A (everything up) and of B (everything down);
 * 2. a no-change two-way sync: A, then B (goal < 1 s each);
 * 3. a rename of the folder holding all the files on A, until B has it
 *    (goal < 2 s, no bytes moved: --json shows moves only, no upload or
 *    download);
 * 4. `sync --watch` on both: a file written on A until it is complete on B,
 *    over BENCH_SYNC_CHANGES (50) changes, from A's write and from the
 *    server's commit (goal as pull --watch: p50 < 150 ms, p99 < 500 ms).
 *
 * Not a test: it prints figures and ratios and checks only correctness.
 * Every command is timed whole, start-up included.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { watch as fsWatch } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { connectDrive } from "../cli/rpc/drive-client.js";
import { startDriveServer, type TestServer } from "../test/support/drive-server.js";
import { timed } from "./support.js";

const FILES = Number(process.env.BENCH_FILES ?? 10_000);
const FILE_SIZE = Number(process.env.BENCH_FILE_SIZE ?? 4096);
const CHANGES = Number(process.env.BENCH_SYNC_CHANGES ?? 50);
const BIN = join(import.meta.dirname, "..", "bin", "drive.js");
const REMOTE = "two-way";

const dir = await mkdtemp(join(tmpdir(), "drive-bench-two-way-"));

interface Side {
  name: string;
  root: string;
  env: NodeJS.ProcessEnv;
}

function side(server: TestServer, name: string): Side {
  return {
    name,
    root: join(dir, name),
    env: { ...process.env, DRIVE_SERVER: server.url, DRIVE_TOKEN: server.adminToken, DRIVE_CONFIG: join(dir, "none.json"), DRIVE_CACHE_DIR: join(dir, `cache-${name}`) },
  };
}

/** One `drive --json sync`, timed, with its op lines counted by type. */
async function sync(s: Side, ...args: string[]): Promise<{ seconds: number; ops: Map<string, number> }> {
  const r = await timed(process.execPath, [BIN, "--json", "sync", s.root, REMOTE, ...args], s.env);
  const ops = new Map<string, number>();
  for (const line of r.out.split("\n")) {
    if (!line.startsWith("{")) continue;
    const l = JSON.parse(line) as { type?: string; op?: string };
    if (l.type === "op" && l.op) ops.set(l.op, (ops.get(l.op) ?? 0) + 1);
  }
  return { seconds: r.seconds, ops };
}

const opsText = (ops: Map<string, number>) => [...ops].map(([op, n]) => `${n} ${op}`).join(", ") || "no ops";
const rate = (s: number) => `${(FILES / s).toFixed(0)} files/s`;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;

/** FILES files under top/, in folders of 100, two levels deep, random content each. */
async function makeTree(root: string): Promise<void> {
  for (let i = 0; i < FILES; i++) {
    const folder = join(root, "top", `d${Math.floor(i / 1000)}`, `e${Math.floor(i / 100) % 10}`);
    if (i % 100 === 0) await mkdir(folder, { recursive: true });
    await writeFile(join(folder, `f${i}.bin`), randomBytes(FILE_SIZE));
  }
}

/** Resolves with the time `name` in `folder` first holds `content`, watching the folder and polling as a backstop. */
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

async function watchLatency(server: TestServer, a: Side, b: Side): Promise<void> {
  const rpc = connectDrive({ server: server.url, token: server.adminToken });
  const start = (s: Side) => spawn(process.execPath, [BIN, "--json", "sync", "--watch", s.root, REMOTE], { env: s.env, stdio: ["ignore", "ignore", "inherit"] });
  const watchers = [start(a), start(b)];
  const folder = "changes";
  try {
    await mkdir(join(a.root, folder), { recursive: true });
    const seed = `seed ${Math.random()}`;
    await writeFile(join(a.root, folder, "seed.txt"), seed);
    await waitFor(join(b.root, folder, "seed.txt"), seed, 60_000);
    const fromWrite: number[] = [];
    const fromCommit: number[] = [];
    for (let i = 0; i < CHANGES; i++) {
      const name = `change-${i}.txt`;
      const content = `change ${i} ${Math.random()}\n`.repeat(1 + (i % 50));
      const landed = arrival(join(b.root, folder), name, content);
      await writeFile(join(a.root, folder, name), content);
      const wrote = Date.now();
      const at = await landed;
      const stat = await rpc.files.stat({ path: `${REMOTE}/${folder}/${name}` });
      fromWrite.push(at - wrote);
      fromCommit.push(at - timestampMs(stat.file!.modifiedAt!));
    }
    const line = (label: string, xs: number[]) => `${label}: p50 ${pct(xs, 50)} ms, p99 ${pct(xs, 99)} ms, max ${Math.max(...xs)} ms`;
    console.log(`sync --watch latency, ${CHANGES} changes, written on A until complete on B (goal p50 < 150 ms, p99 < 500 ms)`);
    console.log(`  ${line("from the server's commit", fromCommit)}  (p50 ${(150 / pct(fromCommit, 50)).toFixed(2)}x the goal)`);
    console.log(`  ${line("from A's write", fromWrite)} (includes A's wait for the file to settle)`);
  } finally {
    for (const w of watchers) w.kill("SIGINT");
    await Promise.all(watchers.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : w.once("exit", r)))));
    rpc.close();
  }
}

async function waitFor(path: string, content: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while ((await readFile(path, "utf8").catch(() => undefined)) !== content) {
    if (Date.now() > end) throw new Error(`${path} never arrived`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function main(): Promise<void> {
  const server = await startDriveServer({ args: ["--log-level", "warn"] });
  const a = side(server, "a");
  const b = side(server, "b");
  try {
    console.log(`making ${FILES} files of ${FILE_SIZE} bytes on A...`);
    await makeTree(a.root);
    await mkdir(b.root, { recursive: true });

    const upA = await sync(a);
    const downB = await sync(b);
    console.log(`first sync: A ${upA.seconds.toFixed(2)}s (${rate(upA.seconds)}; ${opsText(upA.ops)}), B ${downB.seconds.toFixed(2)}s (${rate(downB.seconds)}; ${opsText(downB.ops)})`);

    const idleA = await sync(a);
    const idleB = await sync(b);
    console.log(
      `no-change two-way sync of ${FILES} files: A ${idleA.seconds.toFixed(2)}s, B ${idleB.seconds.toFixed(2)}s (goal < 1 s: ${(1 / Math.max(idleA.seconds, idleB.seconds)).toFixed(2)}x; ${opsText(new Map([...idleA.ops, ...idleB.ops]))})`,
    );

    await rename(join(a.root, "top"), join(a.root, "top-renamed"));
    const moveA = await sync(a);
    const moveB = await sync(b);
    const total = moveA.seconds + moveB.seconds;
    const moved = [...moveA.ops, ...moveB.ops].filter(([op]) => op === "upload" || op === "download");
    console.log(
      `folder rename of ${FILES} files, A's sync then B's: ${total.toFixed(2)}s (A ${moveA.seconds.toFixed(2)}s: ${opsText(moveA.ops)}; B ${moveB.seconds.toFixed(2)}s: ${opsText(moveB.ops)}) (goal < 2 s: ${(2 / total).toFixed(2)}x; bytes moved: ${moved.length ? `NO, ${opsText(new Map(moved))}` : "none"})`,
    );
    const there = await readFile(join(b.root, "top-renamed", "d0", "e0", "f0.bin")).then(() => true, () => false);
    if (!there) throw new Error("B does not have the renamed folder");

    await watchLatency(server, a, b);
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
