import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { RgwHandle } from "../test/support/ceph-rgw.js";

/** Shared by the benchmarks: random files, timed commands, medians. */

export async function writeRandom(path: string, size: number): Promise<void> {
  const fh = await open(path, "w");
  for (let off = 0; off < size; off += 64 * 1024 * 1024) await fh.write(randomBytes(Math.min(64 * 1024 * 1024, size - off)));
  await fh.close();
}

/** Runs a command to its end: its wall time, stdout, and peak RSS sampled every 50 ms. */
export function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ seconds: number; peakRssMb: number; out: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    let peak = 0;
    child.stdout.on("data", (c) => (out += c));
    const poll = setInterval(async () => {
      const status = await open(`/proc/${child.pid}/status`).then((f) => f.readFile("utf8").finally(() => f.close())).catch(() => "");
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      peak = Math.max(peak, kb / 1024);
    }, 50);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearInterval(poll);
      const seconds = (performance.now() - started) / 1000;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(" ")} exited ${code}\n${out}`));
      else resolve({ seconds, peakRssMb: peak, out });
    });
  });
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Changes the first bytes in place, so the file is new content of the same size (no deduplication). */
export async function freshen(path: string): Promise<void> {
  const fh = await open(path, "r+");
  await fh.write(randomBytes(32), 0, 32, 0);
  await fh.close();
}

/** The environment that makes `rclone` see the RGW as the remote "rgw:", with no config file of its own in `dir`. */
export async function rcloneEnv(rgw: RgwHandle, dir: string): Promise<NodeJS.ProcessEnv> {
  // rclone 1.60 fails on plain http while AWS_CA_BUNDLE is set.
  const { AWS_CA_BUNDLE: _, ...base } = process.env;
  // Remotes come from the environment; an empty file keeps rclone from warning there is none.
  await writeFile(join(dir, "rclone.conf"), "");
  return {
    ...base,
    RCLONE_CONFIG: join(dir, "rclone.conf"),
    RCLONE_CONFIG_RGW_TYPE: "s3",
    RCLONE_CONFIG_RGW_PROVIDER: "Ceph",
    RCLONE_CONFIG_RGW_ENDPOINT: rgw.endpoint,
    RCLONE_CONFIG_RGW_ACCESS_KEY_ID: rgw.accessKey,
    RCLONE_CONFIG_RGW_SECRET_ACCESS_KEY: rgw.secretKey,
    RCLONE_CONFIG_RGW_REGION: rgw.region,
  };
}
