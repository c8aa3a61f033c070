/**
 * npm run bench:s3: push and pull a 1 GiB random file through drive in S3
 * mode, and the same file with `rclone copy` and `aws s3 cp`, all against
 * one Ceph RGW started here, in the same run. Not a test: it prints
 * throughputs and drive's ratio to the faster peer, and asserts nothing.
 *
 * Every tool runs with its defaults. Rounds interleave the tools, so that a
 * noisy neighbour hits them alike; the figures are medians. drive's times
 * are whole commands: start-up, the BLAKE3 scan, and the fsync and rename
 * after a pull, none of which the peers do.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startRgw } from "../test/support/ceph-rgw.js";
import { startDriveServer } from "../test/support/drive-server.js";
import { s3ServerEnv, testS3Client } from "../test/support/s3-helpers.js";
import { median, rcloneEnv, timed, writeRandom } from "./support.js";

const SIZE = Number(process.env.BENCH_SIZE ?? 1024 ** 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** bluestore keeps a few GiB of uploads out of RAM; memstore is faster to start. */
const RGW_STORE = (process.env.BENCH_RGW_STORE ?? "bluestore") as "bluestore" | "memstore";
const MB = 1e6;
const PEER_BUCKET = "peers";

interface Tool {
  name: string;
  up(src: string, round: number): Promise<number>;
  down(dest: string, round: number): Promise<number>;
}

const dir = await mkdtemp(join(tmpdir(), "drive-bench-s3-"));
const src = join(dir, "random.bin");
const out = join(dir, "down.bin");
console.log(`starting Ceph RGW (${RGW_STORE})...`);
const rgw = await startRgw({ store: RGW_STORE });
try {
  const engine = { ...rgw, virtualHost: null };
  const s3 = testS3Client(engine);
  await s3.makeBucket(PEER_BUCKET, rgw.region);

  console.log(`writing ${(SIZE / MB).toFixed(0)} MB of random data...`);
  await writeRandom(src, SIZE);
  spawnSync("sync");

  const server = await startDriveServer({ args: ["--log-level", "warn"], env: s3ServerEnv(engine, "drive") });
  try {
    const bin = join(import.meta.dirname, "..", "bin", "drive.js");
    const driveEnv = { ...process.env, DRIVE_SERVER: server.url, DRIVE_TOKEN: server.adminToken, DRIVE_CONFIG: join(dir, "none.json") };
    const pushed = new Map<number, string>();
    const tools: Tool[] = [
      {
        name: "drive",
        async up(file, round) {
          const r = await timed(process.execPath, [bin, "--json", "push", file, `bench/r${round}.bin`], driveEnv);
          const summary = JSON.parse(r.out.trim().split("\n").at(-1)!);
          if (summary.bytes_transferred !== SIZE) throw new Error(`drive push moved ${summary.bytes_transferred} bytes, not ${SIZE}`);
          pushed.set(round, summary.content_hash);
          return r.seconds;
        },
        async down(dest, round) {
          const r = await timed(process.execPath, [bin, "--json", "pull", "--no-reuse", `bench/r${round}.bin`, dest], driveEnv);
          if (JSON.parse(r.out.trim().split("\n").at(-1)!).content_hash !== pushed.get(round)) throw new Error("drive pulled other content");
          return r.seconds;
        },
      },
    ];

    if (existsSync("/usr/bin/rclone") || spawnSync("rclone", ["version"]).status === 0) {
      const env = await rcloneEnv(rgw, dir);
      tools.push({
        name: "rclone copy",
        up: async (file, round) => (await timed("rclone", ["copyto", file, `rgw:${PEER_BUCKET}/rclone/r${round}.bin`], env)).seconds,
        down: async (dest, round) => (await timed("rclone", ["copyto", `rgw:${PEER_BUCKET}/rclone/r${round}.bin`, dest], env)).seconds,
      });
    } else console.log("rclone not found (apt-get install rclone): skipped");

    if (existsSync("/usr/bin/aws")) {
      // /usr/bin/aws is Debian's aws-cli v2; the first aws on PATH may be another.
      const env = {
        ...process.env,
        AWS_ACCESS_KEY_ID: rgw.accessKey,
        AWS_SECRET_ACCESS_KEY: rgw.secretKey,
        AWS_DEFAULT_REGION: rgw.region,
        AWS_CONFIG_FILE: join(dir, "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE: join(dir, "aws-credentials"),
        AWS_EC2_METADATA_DISABLED: "true",
      };
      const aws = (from: string, to: string) => timed("/usr/bin/aws", ["s3", "cp", "--only-show-errors", "--endpoint-url", rgw.endpoint, from, to], env);
      tools.push({
        name: "aws s3 cp",
        up: async (file, round) => (await aws(file, `s3://${PEER_BUCKET}/aws/r${round}.bin`)).seconds,
        down: async (dest, round) => (await aws(`s3://${PEER_BUCKET}/aws/r${round}.bin`, dest)).seconds,
      });
    } else console.log("/usr/bin/aws not found (apt-get install awscli): skipped");

    const up = new Map<string, number[]>(tools.map((t) => [t.name, []]));
    const down = new Map<string, number[]>(tools.map((t) => [t.name, []]));
    for (let round = 1; round <= ROUNDS; round++) {
      // New content throughout (a changed byte or two would now be a delta push).
      await writeRandom(src, SIZE);
      spawnSync("sync");
      const line: string[] = [];
      for (const tool of tools) {
        const s = await tool.up(src, round);
        up.get(tool.name)!.push(s);
        line.push(`${tool.name} up ${s.toFixed(2)}s`);
      }
      for (const tool of tools) {
        const s = await tool.down(out, round);
        if ((await stat(out)).size !== SIZE) throw new Error(`${tool.name} downloaded ${(await stat(out)).size} bytes`);
        await rm(out);
        spawnSync("sync");
        down.get(tool.name)!.push(s);
        line.push(`${tool.name} down ${s.toFixed(2)}s`);
      }
      console.log(`round ${round}: ${line.join(", ")}`);
    }

    const mbps = (s: number) => SIZE / MB / s;
    console.log(`\nmedian of ${ROUNDS} rounds, ${(SIZE / MB).toFixed(0)} MB, Ceph RGW (${RGW_STORE}) on 127.0.0.1, everything sharing this machine`);
    console.log(`${"".padEnd(14)}${"push".padStart(9)}${"MB/s".padStart(8)}${"pull".padStart(10)}${"MB/s".padStart(8)}`);
    for (const tool of tools) {
      const u = median(up.get(tool.name)!);
      const d = median(down.get(tool.name)!);
      console.log(`${tool.name.padEnd(14)}${u.toFixed(2).padStart(8)}s${mbps(u).toFixed(0).padStart(8)}${d.toFixed(2).padStart(9)}s${mbps(d).toFixed(0).padStart(8)}`);
    }
    const peers = tools.slice(1);
    if (peers.length) {
      // A ratio over 1 means drive took less time than the peer.
      const ratio = (m: Map<string, number[]>, peer: number) => (peer / median(m.get("drive")!)).toFixed(2);
      console.log("");
      for (const p of peers) {
        console.log(`drive vs ${p.name}: push ${ratio(up, median(up.get(p.name)!))}x, pull ${ratio(down, median(down.get(p.name)!))}x`);
      }
      const best = (m: Map<string, number[]>) => Math.min(...peers.map((p) => median(m.get(p.name)!)));
      console.log(`drive vs the faster peer: push ${ratio(up, best(up))}x, pull ${ratio(down, best(down))}x  (goal: 1.00x or better)`);
    }
  } finally {
    await server.stop();
  }
} finally {
  await rgw.stop();
  await rm(dir, { recursive: true, force: true });
}
