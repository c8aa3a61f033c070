import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, startDriveServer, type TestServer } from "../support/drive-server.js";

const MiB = 1024 * 1024;
const SIZE = 1024 * MiB;
// A bare node process is ~45 MiB and the CLI's modules bring it to ~65 MiB;
// with parts streamed, the rest is a few buffers per part in flight plus
// what V8 lets pile up before it collects (it collects on ~64 MiB of new
// external memory). Buffering whole parts (6 x 16 MiB) would not fit.
const RSS_LIMIT = 150 * MiB;

/** One field of /proc/<pid>/status, in bytes; undefined once the process is gone. */
async function procStatus(pid: number, field: "VmRSS" | "VmHWM"): Promise<number | undefined> {
  const text = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}

interface Watched {
  code: number | null;
  output: string;
  summary: Record<string, any> | undefined;
  peakRss: number;
  samples: number;
}

/**
 * Runs the real CLI, polling its resident memory every 50 ms from the moment
 * it is spawned. VmHWM, the kernel's own high-water mark, is read as well,
 * so a peak between two polls still counts.
 */
async function runWatchingRss(server: TestServer, cwd: string, args: string[]): Promise<Watched> {
  const child = spawn(process.execPath, [BIN, "--json", ...args], {
    cwd,
    env: { ...process.env, DRIVE_CONFIG: join(cwd, "no-config.json"), DRIVE_SERVER: server.url, DRIVE_TOKEN: server.adminToken },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c) => (stdout += c));
  child.stderr.on("data", (c) => (stderr += c));
  let peakRss = 0;
  let samples = 0;
  const poll = async () => {
    for (const field of ["VmRSS", "VmHWM"] as const) {
      const bytes = await procStatus(child.pid!, field);
      if (bytes === undefined) continue;
      peakRss = Math.max(peakRss, bytes);
      samples++;
    }
  };
  const timer = setInterval(() => void poll(), 50);
  const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
  clearInterval(timer);
  const summary = stdout
    .split("\n")
    .filter((l) => l.startsWith('{"type":"summary"'))
    .map((l) => JSON.parse(l) as Record<string, any>)
    .at(-1);
  return { code, output: stderr + stdout, summary, peakRss, samples };
}

/** 1 GiB that neither deduplicates nor compresses: one random MiB, stamped with its offset. */
async function writeBigFile(path: string): Promise<void> {
  const block = randomBytes(MiB);
  const fh = await open(path, "w");
  try {
    for (let off = 0; off < SIZE; off += MiB) {
      block.writeBigUInt64LE(BigInt(off), 0);
      await fh.write(block, 0, MiB, off);
    }
  } finally {
    await fh.close();
  }
}

describe("client memory", () => {
  let server: TestServer;
  let dir: string;

  beforeAll(async () => {
    server = await startDriveServer();
    dir = await mkdtemp(join(tmpdir(), "drive-memory-"));
  });
  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("stays under 150 MiB resident pushing and pulling 1 GiB", async () => {
    await writeBigFile(join(dir, "big.bin"));

    const push = await runWatchingRss(server, dir, ["push", "big.bin", "memory/big.bin"]);
    expect(push.code, push.output).toBe(0);
    expect(push.summary).toMatchObject({ bytes_total: SIZE, bytes_transferred: SIZE });
    expect(push.samples).toBeGreaterThan(0);
    expect(push.peakRss).toBeLessThan(RSS_LIMIT);
    // The server holds it now; free the disk before the copy comes back.
    await rm(join(dir, "big.bin"));

    const pull = await runWatchingRss(server, dir, ["pull", "memory/big.bin", "copy.bin"]);
    expect(pull.code, pull.output).toBe(0);
    expect(pull.summary).toMatchObject({ bytes_total: SIZE, bytes_transferred: SIZE });
    expect(pull.samples).toBeGreaterThan(0);
    expect(pull.peakRss).toBeLessThan(RSS_LIMIT);
    // Pull checked every chunk against the hashes push took of the source.
    expect(pull.summary!.content_hash).toBe(push.summary!.content_hash);
  });
});
