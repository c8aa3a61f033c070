/**
 * The local side at scale (not a test): the LMDB index with 1,000,000
 * entries (writes in batches, a full iteration, get() latency, file size),
 * and walks of 10,000 and 100,000 files, warm and cold-ish (caches dropped
 * when allowed, else a fresh tree). Run: npx tsx bench/local-index.ts
 * (WALK_ONLY=1 for the walks alone). The first walk in a process also pays
 * for JIT warm-up, as a `drive push` does.
 */
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, stat, writeFile, writeFile as wf } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFilter } from "../cli/local/filter.js";
import { indexFile, openIndex } from "../cli/local/index-store.js";
import type { IndexEntry } from "../cli/local/types.js";
import { walkAll } from "../cli/local/walk.js";

const N = Number(process.env.N ?? 1_000_000);
const BATCH = 10_000;

function entry(path: string, n: number): IndexEntry {
  return { path, kind: "file", size: n, mtimeNs: 1_700_000_000_000_000_000n + BigInt(n), ctimeNs: 1_700_000_000_000_000_000n, mode: 0o644, dev: 2049n, ino: BigInt(n), contentHash: Buffer.alloc(32, n & 255), hashKind: 1, revision: n };
}
const pathOf = (i: number) => `dir${Math.floor(i / 1000)}/sub${Math.floor(i / 100) % 10}/file-${i}.dat`;

async function dropCaches(): Promise<boolean> {
  try {
    execFileSync("sync");
    await wf("/proc/sys/vm/drop_caches", "3");
    return true;
  } catch {
    return false;
  }
}

async function benchIndex(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "bench-index-"));
  const key = { server: "bench", remoteRoot: "r", localRoot: "/l" };
  const idx = await openIndex(key, dir);
  let t = performance.now();
  for (let b = 0; b < N; b += BATCH) {
    const puts: IndexEntry[] = [];
    for (let i = b; i < Math.min(N, b + BATCH); i++) puts.push(entry(pathOf(i), i));
    await idx.update(puts);
  }
  const writeS = (performance.now() - t) / 1000;
  t = performance.now();
  let n = 0;
  for (const _ of idx.entries()) n++;
  const iterS = (performance.now() - t) / 1000;
  const gets = 200_000;
  t = performance.now();
  for (let i = 0; i < gets; i++) if (!idx.get(pathOf((i * 7919) % N))) throw new Error("missing");
  const getUs = ((performance.now() - t) * 1000) / gets;
  t = performance.now();
  await idx.update([entry("one-more", 1)]);
  const oneMs = performance.now() - t;
  const size = (await stat(indexFile(dir, key))).size;
  await idx.close();
  t = performance.now();
  const again = await openIndex(key, dir);
  const reopenMs = performance.now() - t;
  await again.close();
  console.log(`index: ${N} entries written in batches of ${BATCH} in ${writeS.toFixed(1)} s (${Math.round(N / writeS)} entries/s)`);
  console.log(`index: iterated ${n} in ${iterS.toFixed(2)} s (${Math.round(n / iterS)} entries/s); get() ${getUs.toFixed(2)} µs each (random, ${gets})`);
  console.log(`index: one-entry durable update ${oneMs.toFixed(1)} ms; reopen ${reopenMs.toFixed(1)} ms; file ${(size / 2 ** 20).toFixed(0)} MiB (${Math.round(size / N)} B/entry)`);
  await rm(dir, { recursive: true, force: true });
}

async function benchWalk(files: number): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "bench-walk-"));
  for (let i = 0; i < files; i += 100) {
    const d = join(root, `d${Math.floor(i / 1000)}`, `s${Math.floor(i / 100) % 10}`);
    await mkdir(d, { recursive: true });
    await Promise.all(Array.from({ length: 100 }, (_, j) => writeFile(join(d, `f${i + j}`), "x")));
  }
  const filter = createFilter({ exclude: [], include: [] });
  const cold = await dropCaches();
  for (const label of [cold ? "cold (caches dropped)" : "first (caches not droppable: fresh tree)", "warm", "warm"]) {
    const t = performance.now();
    const cpu = process.cpuUsage();
    const n = (await walkAll(root, { filter })).length;
    const s = (performance.now() - t) / 1000;
    const used = process.cpuUsage(cpu);
    // CPU time too: on a loaded machine wall time mostly measures the other processes.
    console.log(`walk: ${files} files, ${label}: ${n} entries in ${(s * 1000).toFixed(0)} ms (${Math.round(n / s)} entries/s), CPU ${((used.user + used.system) / 1000).toFixed(0)} ms`);
  }
  await rm(root, { recursive: true, force: true });
}

await benchWalk(10_000);
await benchWalk(100_000);
if (!process.env.WALK_ONLY) await benchIndex();
