/**
 * npm run bench:scan: how fast the push's scan reads, chunks (FastCDC) and
 * hashes (BLAKE3 of every chunk and of the whole file) a 1 GiB random file
 * on a warm page cache, beside `cat > /dev/null` and `b3sum` of the same
 * file. Not a test: it prints figures and asserts nothing. The goal (issue
 * 8) is >= 1 GB/s on this 2-core VM.
 *
 * It runs the compiled scan from dist/ (what users run) in a fresh node
 * per round, timing the scan alone, with the worker thread and without.
 * BENCH_SIZE and BENCH_ROUNDS change the file size and the rounds.
 */
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { median, timed, writeRandom } from "./support.js";

const SIZE = Number(process.env.BENCH_SIZE ?? 1024 ** 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const GB = 1e9;

const root = join(import.meta.dirname, "..");
const scanModule = join(root, "dist", "cli", "transfer", "scan-file.js");
if (!existsSync(scanModule)) throw new Error(`${scanModule} is missing: run npm run build first`);

/** One scan in a fresh process, so every round pays the worker's start-up as a push does: its seconds. */
function scanOnce(path: string, thread: "always" | "never"): number {
  const script = `
    const { scanFile } = await import(${JSON.stringify(scanModule)});
    const t = performance.now();
    const s = await scanFile(${JSON.stringify(path)}, { thread: ${JSON.stringify(thread)} });
    console.log(JSON.stringify({ seconds: (performance.now() - t) / 1000, chunks: s.chunks.length, hash: s.contentHash.toString("hex") }));`;
  const runner = join(dir, "scan-once.mjs");
  writeFileSync(runner, script);
  const run = spawnSync(process.execPath, [runner], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(run.stderr);
  const out = JSON.parse(run.stdout) as { seconds: number; chunks: number; hash: string };
  hashes.add(out.hash);
  chunkCount = out.chunks;
  return out.seconds;
}

const hashes = new Set<string>();
let chunkCount = 0;
const dir = await mkdtemp(join(tmpdir(), "drive-bench-scan-"));
const file = join(dir, "random.bin");
try {
  console.log(`writing ${(SIZE / 1e6).toFixed(0)} MB of random data...`);
  await writeRandom(file, SIZE);
  spawnSync("cat", [file], { stdio: ["ignore", "ignore", "inherit"] }); // warm the page cache

  const runs = { cat: [] as number[], b3sum: [] as number[], b3sum1: [] as number[], threaded: [] as number[], single: [] as number[] };
  const haveB3sum = spawnSync("b3sum", ["--version"]).status === 0;
  for (let round = 1; round <= ROUNDS; round++) {
    runs.cat.push((await timed("sh", ["-c", `cat "${file}" > /dev/null`])).seconds);
    if (haveB3sum) {
      const b3 = await timed("b3sum", ["--no-names", file]);
      hashes.add(b3.out.trim());
      runs.b3sum.push(b3.seconds);
      runs.b3sum1.push((await timed("b3sum", ["--no-names", "--num-threads", "1", file])).seconds);
    }
    runs.threaded.push(scanOnce(file, "always"));
    runs.single.push(scanOnce(file, "never"));
  }

  const row = (name: string, xs: number[]) =>
    xs.length && console.log(`${name.padEnd(34)} ${(SIZE / GB / median(xs)).toFixed(2).padStart(6)} GB/s   median of ${xs.length}: ${median(xs).toFixed(3)} s`);
  console.log(`\n${(SIZE / 1e6).toFixed(0)} MB, warm page cache, ${chunkCount} chunks:`);
  row("scan, cut in a worker thread", runs.threaded);
  row("scan, one thread", runs.single);
  row("cat > /dev/null", runs.cat);
  row("b3sum (all cores)", runs.b3sum);
  row("b3sum --num-threads 1", runs.b3sum1);
  console.log(hashes.size === 1 ? "content hash: the scan and b3sum agree" : `content hashes DIFFER: ${[...hashes].join(" ")}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
