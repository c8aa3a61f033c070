/**
 * npm run bench: push and pull a 1 GiB random file through drive on the
 * embedded default, beside `cp` of the same file measured in the same run.
 * Not a test: it prints figures and ratios, and asserts nothing.
 *
 * The baseline is `cp` followed by `sync`: drive's local store makes every
 * part durable (fdatasync) before it answers, so a baseline that leaves the
 * copy in the page cache would compare a promise with a fact.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDriveServer } from "../test/support/drive-server.js";
import { median, timed, writeRandom } from "./support.js";

const SIZE = Number(process.env.BENCH_SIZE ?? 1024 ** 3);
const MB = 1e6;

const rate = (s: number) => `${((SIZE / MB) / s).toFixed(0).padStart(5)} MB/s`;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

const dir = await mkdtemp(join(tmpdir(), "drive-bench-"));
const src = join(dir, "random.bin");
try {
  console.log(`writing ${(SIZE / MB).toFixed(0)} MB of random data...`);
  await writeRandom(src, SIZE);
  spawnSync("sync");

  const server = await startDriveServer({ args: ["--log-level", "warn"] });
  try {
    const env = { ...process.env, DRIVE_SERVER: server.url, DRIVE_TOKEN: server.adminToken, DRIVE_CONFIG: join(dir, "none.json") };
    const bin = join(import.meta.dirname, "..", "bin", "drive.js");
    const runs = { cp: [] as number[], push: [] as number[], pull: [] as number[], pushRss: [] as number[], pullRss: [] as number[] };
    // Rounds interleave the three, so that a noisy disk or neighbour hits them alike.
    for (let round = 1; round <= ROUNDS; round++) {
      // New content each round (else the push deduplicates): change the first bytes.
      // New content throughout (a changed byte or two would now be a delta push).
      await writeRandom(src, SIZE);
      spawnSync("sync");

      const cp = await timed("sh", ["-c", `cp "${src}" "${join(dir, "cp.bin")}" && sync`]);
      await rm(join(dir, "cp.bin"));
      spawnSync("sync");
      const push = await timed(process.execPath, [bin, "--json", "push", src, `bench/random-${round}.bin`], env);
      spawnSync("sync");
      const pull = await timed(process.execPath, [bin, "--json", "pull", "--no-reuse", `bench/random-${round}.bin`, join(dir, "pulled.bin")], env);
      const pushed = JSON.parse(push.out.trim().split("\n").at(-1)!);
      const pulled = JSON.parse(pull.out.trim().split("\n").at(-1)!);
      if (pushed.content_hash !== pulled.content_hash) throw new Error("pulled content differs from pushed content");
      if (pushed.bytes_transferred !== SIZE) throw new Error(`push moved ${pushed.bytes_transferred} bytes, not ${SIZE}`);
      await rm(join(dir, "pulled.bin"));
      spawnSync("sync");
      console.log(`round ${round}: cp ${cp.seconds.toFixed(2)}s, push ${push.seconds.toFixed(2)}s, pull ${pull.seconds.toFixed(2)}s`);
      runs.cp.push(cp.seconds);
      runs.push.push(push.seconds);
      runs.pull.push(pull.seconds);
      runs.pushRss.push(push.peakRssMb);
      runs.pullRss.push(pull.peakRssMb);
    }

    const cp = median(runs.cp);
    console.log(`\nmedian of ${ROUNDS} rounds, ${(SIZE / MB).toFixed(0)} MB, whole commands (start-up, hashing and commit included)`);
    console.log(`${"".padEnd(22)}${"time".padStart(8)}  ${"throughput".padStart(10)}  ratio to cp  client peak RSS`);
    console.log(`cp + sync (baseline)  ${cp.toFixed(2).padStart(7)}s  ${rate(cp)}      1.00x`);
    for (const [name, t, rss] of [["drive push", median(runs.push), Math.max(...runs.pushRss)], ["drive pull", median(runs.pull), Math.max(...runs.pullRss)]] as const) {
      console.log(`${name.padEnd(22)}${t.toFixed(2).padStart(7)}s  ${rate(t)}      ${(cp / t).toFixed(2)}x       ${rss.toFixed(0)} MB`);
    }
    console.log("\n(goal: push and pull each at least 0.5x cp, client and server sharing this machine)");
  } finally {
    await server.stop();
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
