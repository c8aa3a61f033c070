/**
 * npm run bench:sync: whole trees of small files and the change feed, in one
 * run (issue 9's figures). Not a test: it prints figures and ratios and
 * asserts nothing but correctness.
 *
 * 1. Small files on the embedded default: push of BENCH_FILES (10,000) files
 *    of BENCH_FILE_SIZE (4 KiB) into an empty remote folder, pull of the tree
 *    into an empty folder, and a push of the unchanged tree again.
 * 2. The same tree on Ceph RGW: drive (S3 mode) against `rclone copy`, files/s
 *    each, and drive's ratio.
 * 3. Change propagation latency, client A's push to client B's
 *    `pull --watch` (bench/watch-latency.ts).
 * 4. Memory per watcher with 1,000 watchers (bench/watchers.ts).
 * 5. Two-way sync (issue 10): first sync, a no-change sync, a folder rename
 *    of BENCH_FILES files reaching the other client, and `sync --watch`
 *    latency (bench/sync-two-way.ts).
 *
 * BENCH_PARTS picks some of "local,s3,latency,watchers,sync" (default: all).
 * Every command is timed whole, start-up included.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { startRgw } from "../test/support/ceph-rgw.js";
import { startDriveServer, type TestServer } from "../test/support/drive-server.js";
import { s3ServerEnv, testS3Client } from "../test/support/s3-helpers.js";
import { rcloneEnv, timed } from "./support.js";

const FILES = Number(process.env.BENCH_FILES ?? 10_000);
const FILE_SIZE = Number(process.env.BENCH_FILE_SIZE ?? 4096);
const PARTS = (process.env.BENCH_PARTS ?? "local,s3,latency,watchers,sync").split(",");
const BIN = join(import.meta.dirname, "..", "bin", "drive.js");

const dir = await mkdtemp(join(tmpdir(), "drive-bench-sync-"));
const tree = join(dir, "tree");

/** FILES files in folders of 100, two levels deep, random content each (no deduplication). */
async function makeTree(root: string): Promise<void> {
  for (let i = 0; i < FILES; i++) {
    const folder = join(root, `d${Math.floor(i / 1000)}`, `e${Math.floor(i / 100) % 10}`);
    if (i % 100 === 0) await mkdir(folder, { recursive: true });
    await writeFile(join(folder, `f${i}.bin`), randomBytes(FILE_SIZE));
  }
}

async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out.push(relative(root, join(e.parentPath, e.name)));
  }
  return out.sort();
}

/** Same names, same bytes. */
async function sameTree(a: string, b: string): Promise<void> {
  const [la, lb] = [await listFiles(a), await listFiles(b)];
  if (la.length !== lb.length || la.some((p, i) => p !== lb[i])) throw new Error(`trees differ: ${la.length} files vs ${lb.length}`);
  for (const p of la) if (!(await readFile(join(a, p))).equals(await readFile(join(b, p)))) throw new Error(`${p} differs`);
}

function driveEnv(server: TestServer): NodeJS.ProcessEnv {
  return { ...process.env, DRIVE_SERVER: server.url, DRIVE_TOKEN: server.adminToken, DRIVE_CONFIG: join(dir, "none.json"), DRIVE_CACHE_DIR: join(dir, "cache") };
}

const drive = (args: string[], env: NodeJS.ProcessEnv) => timed(process.execPath, [BIN, "--json", ...args], env);
const rate = (s: number) => `${(FILES / s).toFixed(0)} files/s`;

interface TreeFigures {
  push: number;
  pull: number;
  again: number;
}

/** Push into an empty folder, pull into an empty folder, push the unchanged tree again. */
async function driveTree(server: TestServer, tag: string): Promise<TreeFigures> {
  const env = { ...driveEnv(server), DRIVE_CACHE_DIR: join(dir, `cache-${tag}`) };
  const push = await drive(["push", tree, `bench-${tag}`], env);
  const out = join(dir, `pulled-${tag}`);
  const pull = await drive(["pull", `bench-${tag}`, out], env);
  await sameTree(tree, out);
  const again = await drive(["push", tree, `bench-${tag}`], env);
  const summary = JSON.parse(again.out.trim().split("\n").at(-1)!);
  if (summary.files_sent) throw new Error(`the unchanged tree sent ${summary.files_sent} files again`);
  return { push: push.seconds, pull: pull.seconds, again: again.seconds };
}

function printTree(name: string, f: TreeFigures): void {
  console.log(`${name}: push ${f.push.toFixed(2)}s (${rate(f.push)}), pull ${f.pull.toFixed(2)}s (${rate(f.pull)}), unchanged push ${f.again.toFixed(2)}s`);
}

/** Runs another bench script to its end, its output passed through. */
function runScript(script: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, script)], { stdio: "inherit", env });
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${script} exited ${code}`))));
  });
}

try {
  if (PARTS.includes("local") || PARTS.includes("s3")) {
    console.log(`making ${FILES} files of ${FILE_SIZE} bytes...`);
    await makeTree(tree);
    spawnSync("sync");
  }

  if (PARTS.includes("local")) {
    const server = await startDriveServer({ args: ["--log-level", "warn"] });
    try {
      printTree("\nembedded default (local store)", await driveTree(server, "local"));
      console.log("goals: push and pull >= 1000 files/s, unchanged push < 1 s");
    } finally {
      await server.stop();
    }
  }

  if (PARTS.includes("s3")) {
    console.log("\nstarting Ceph RGW (memstore)...");
    const rgw = await startRgw({ store: "memstore" });
    try {
      const engine = { ...rgw, virtualHost: null };
      await testS3Client(engine).makeBucket("peers", rgw.region);
      const server = await startDriveServer({ args: ["--log-level", "warn"], env: s3ServerEnv(engine, "drive") });
      try {
        const d = await driveTree(server, "s3");
        printTree("drive on RGW", d);
        if (spawnSync("rclone", ["version"]).status === 0) {
          const env = await rcloneEnv(rgw, dir);
          const up = await timed("rclone", ["copy", tree, "rgw:peers/tree"], env);
          const out = join(dir, "rclone-pulled");
          const down = await timed("rclone", ["copy", "rgw:peers/tree", out], env);
          await sameTree(tree, out);
          const again = await timed("rclone", ["copy", tree, "rgw:peers/tree"], env);
          console.log(`rclone copy on RGW: push ${up.seconds.toFixed(2)}s (${rate(up.seconds)}), pull ${down.seconds.toFixed(2)}s (${rate(down.seconds)}), unchanged push ${again.seconds.toFixed(2)}s`);
          console.log(`drive vs rclone copy, files/s: push ${(up.seconds / d.push).toFixed(2)}x, pull ${(down.seconds / d.pull).toFixed(2)}x, unchanged push ${(again.seconds / d.again).toFixed(2)}x  (goal: push 2x or better)`);
        } else console.log("rclone not found (apt-get install rclone): skipped");
      } finally {
        await server.stop();
      }
    } finally {
      await rgw.stop();
    }
  }

  if (PARTS.includes("latency")) {
    console.log("\nchange propagation latency (bench/watch-latency.ts)");
    await runScript("watch-latency.ts");
  }
  if (PARTS.includes("watchers")) {
    console.log("\nwatchers (bench/watchers.ts)");
    await runScript("watchers.ts");
  }
  if (PARTS.includes("sync")) {
    console.log("\ntwo-way sync (bench/sync-two-way.ts)");
    await runScript("sync-two-way.ts");
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}


