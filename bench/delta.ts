/**
 * npm run bench:delta: the bytes on the wire and the time of each delta case
 * of the Delta issue, for drive on both store modes, beside `rsync --stats`
 * over a local rsync daemon and `rclone copy` to the same Ceph RGW, all in
 * this run. Not a test: it prints figures and ratios, and asserts nothing
 * but that every round trip is byte-identical.
 *
 * Each case starts from an old version already stored (drive), already on
 * the daemon's side (rsync) or in the bucket (rclone), then sends the edited
 * version. The pull half starts from the old version on local disk.
 *
 * BENCH_SIZE (default 1 GiB) sizes the files; BENCH_MODES=local,s3 picks the
 * store modes (s3 needs Ceph RGW, as the S3 tests do).
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { copyFile, mkdir, mkdtemp, open, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startRgw, type RgwHandle } from "../test/support/ceph-rgw.js";
import { startDriveServer, type TestServer } from "../test/support/drive-server.js";
import { s3ServerEnv, testS3Client } from "../test/support/s3-helpers.js";
import { rcloneEnv, timed, writeRandom } from "./support.js";

const SIZE = Number(process.env.BENCH_SIZE ?? 1024 ** 3);
const MODES = (process.env.BENCH_MODES ?? "local,s3").split(",").filter(Boolean);
/** BENCH_CASES=5,6 runs only those cases (0-based, in the order below). */
const ONLY = process.env.BENCH_CASES?.split(",").map(Number);
const MiB = 1024 * 1024;
const BIN = join(import.meta.dirname, "..", "bin", "drive.js");

interface Case {
  name: string;
  /** The goal, as a fraction of the file's bytes on the wire. */
  goal: number;
  /** Makes the old version at `old` and the new at `now`; both exist afterwards. */
  make(old: string, now: string): Promise<void>;
  /** Extra push flags for the new version. */
  pushArgs?: string[];
  /** Whether the old version is a different remote path (fresh content cases have none). */
  fresh?: boolean;
  /** Push the very file again (its scan is cached), not a copy of it. */
  same?: boolean;
}

const cases: Case[] = [
  {
    name: "1 MiB inserted in the middle",
    goal: 0.03,
    async make(old, now) {
      await writeRandom(old, SIZE);
      await splice(old, now, SIZE / 2, 0, randomBytes(MiB));
    },
  },
  {
    name: "1 MiB overwritten in place",
    goal: 0.03,
    async make(old, now) {
      await writeRandom(old, SIZE);
      await splice(old, now, SIZE / 2, MiB, randomBytes(MiB));
    },
  },
  {
    name: "1 MiB appended to a log",
    goal: 0.02,
    async make(old, now) {
      await writeLog(old, SIZE, 1);
      await copyFile(old, now);
      const fh = await open(now, "a");
      await fh.write(logText(MiB, 2));
      await fh.close();
    },
  },
  {
    name: "unchanged, pushed again",
    goal: 0,
    same: true,
    async make(old, now) {
      await writeRandom(old, SIZE);
      await copyFile(old, now);
    },
  },
  {
    name: "same file, other --part-size",
    goal: 0,
    pushArgs: ["--part-size", "64M"],
    async make(old, now) {
      await writeRandom(old, SIZE);
      await copyFile(old, now);
    },
  },
  {
    name: "typical text logs, new",
    goal: 0.35,
    fresh: true,
    async make(old, now) {
      await writeFile(old, "");
      await writeLog(now, SIZE, 3 + Math.floor(Math.random() * 1e6));
    },
  },
  {
    name: "random data, new",
    goal: 1.005,
    fresh: true,
    async make(old, now) {
      await writeFile(old, "");
      await writeRandom(now, SIZE);
    },
  },
];

/** Copies `src` to `dest` with `remove` bytes at `at` replaced by `insert`. */
async function splice(src: string, dest: string, at: number, remove: number, insert: Buffer): Promise<void> {
  const s = await open(src, "r");
  const d = await open(dest, "w");
  const buf = Buffer.allocUnsafe(16 * MiB);
  const copy = async (from: number, to: number, outAt: number) => {
    for (let off = from; off < to; ) {
      const { bytesRead } = await s.read(buf, 0, Math.min(buf.length, to - off), off);
      await d.write(buf, 0, bytesRead, outAt + (off - from));
      off += bytesRead;
    }
  };
  const size = (await s.stat()).size;
  await copy(0, at, 0);
  await d.write(insert, 0, insert.length, at);
  await copy(at + remove, size, at + insert.length);
  await s.close();
  await d.close();
}

/** Log lines as a service writes them: timestamps, levels, ids, paths, durations. */
function logText(bytes: number, seed: number): Buffer {
  const levels = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"];
  const paths = ["/api/v1/items", "/api/v1/users", "/healthz", "/api/v1/orders", "/static/app.js", "/api/v2/search"];
  const out = Buffer.allocUnsafe(bytes);
  let off = 0;
  let i = seed * 1_000_003;
  let t = Date.UTC(2026, 11, 1) + (seed % 3650) * 86_400_000;
  while (off < bytes) {
    i++;
    t += (i * 7919) % 1000;
    const line =
      `${new Date(t).toISOString()} ${levels[i % levels.length]} [worker-${i % 8}] ` +
      `req=${((i * 2654435761) >>> 0).toString(16)} method=${i % 5 ? "GET" : "POST"} path=${paths[i % paths.length]}/${(i * 31) % 10007} ` +
      `status=${i % 37 ? 200 : 500} bytes=${(i * 131) % 65536} dur_ms=${(i * 17) % 900} user=u${(i * 13) % 5000}\n`;
    off += out.write(line, off);
  }
  return out;
}

async function writeLog(path: string, size: number, seed: number): Promise<void> {
  const fh = await open(path, "w");
  for (let off = 0, n = 0; off < size; off += 64 * MiB, n++) await fh.write(logText(Math.min(64 * MiB, size - off), seed * 1000 + n));
  await fh.close();
}

async function sha256(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const c of createReadStream(path)) h.update(c);
  return h.digest("hex");
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Measure {
  bytes: number;
  seconds: number;
}

/** drive push/pull of the edited version, after the old one is stored (push) or on disk (pull). */
async function driveCase(server: TestServer, dir: string, c: Case, old: string, now: string, tag: string): Promise<{ push: Measure; pull: Measure }> {
  const env = { ...process.env, DRIVE_SERVER: server.url, DRIVE_TOKEN: server.adminToken, DRIVE_CONFIG: join(dir, "none.json") };
  const run = async (args: string[]) => {
    const r = await timed(process.execPath, [BIN, "--json", ...args], env);
    return { seconds: r.seconds, summary: JSON.parse(r.out.trim().split("\n").at(-1)!) };
  };
  const remote = `bench/${tag}.bin`;
  if (!c.fresh) await run(["push", old, remote]);
  spawnSync("sync");
  const pushed = await run(["push", ...(c.pushArgs ?? []), c.same ? old : now, remote]);
  // The pull starts from the old version on disk, alone in its folder: a pull also reuses the chunks of
  // its neighbours, and the new version beside it would hold them all.
  const folder = join(dir, `pull-${tag}`);
  await mkdir(folder);
  const dest = join(folder, "file.bin");
  await copyFile(old, dest);
  spawnSync("sync");
  const pulled = await run(["pull", remote, dest]);
  if ((await sha256(dest)) !== (await sha256(now))) throw new Error(`${c.name}: drive pulled other bytes`);
  await rm(folder, { recursive: true });
  return {
    push: { bytes: pushed.summary.bytes_transferred, seconds: pushed.seconds },
    pull: { bytes: pulled.summary.bytes_transferred, seconds: pulled.seconds },
  };
}

/** rsync to and from a local daemon, the old version already on the far side. */
async function rsyncCase(daemonRoot: string, url: string, dir: string, old: string, now: string, tag: string): Promise<{ push: Measure; pull: Measure }> {
  const literal = (out: string) => Number(/Literal data: ([\d,]+)/.exec(out)?.[1]?.replace(/,/g, "") ?? NaN);
  const far = join(daemonRoot, `${tag}.bin`);
  await copyFile(old, far);
  spawnSync("sync");
  const up = await timed("rsync", ["--stats", "--no-whole-file", now, `${url}/${tag}.bin`]);
  // Pull: the far side holds the new version, the near side the old.
  const dest = join(dir, `rsync-${tag}.bin`);
  await copyFile(old, dest);
  spawnSync("sync");
  const down = await timed("rsync", ["--stats", "--no-whole-file", `${url}/${tag}.bin`, dest]);
  if ((await sha256(dest)) !== (await sha256(now))) throw new Error("rsync pulled other bytes");
  await rm(dest);
  await rm(far);
  return { push: { bytes: literal(up.out), seconds: up.seconds }, pull: { bytes: literal(down.out), seconds: down.seconds } };
}

/** rclone copy of the edited file to RGW, the old version already in the bucket. */
async function rcloneCase(env: NodeJS.ProcessEnv, old: string, now: string, tag: string): Promise<Measure> {
  const target = `rgw:peers/rclone/${tag}.bin`;
  await timed("rclone", ["copyto", old, target], env);
  const r = await timed("rclone", ["copyto", now, target], env);
  // rclone sends the whole file on any change (it has no delta): what it reports is what it moved.
  const size = (await stat(now)).size;
  return { bytes: (await stat(old)).size === size && (await sha256(old)) === (await sha256(now)) ? 0 : size, seconds: r.seconds };
}

const pct = (bytes: number) => `${((100 * bytes) / SIZE).toFixed(2)}%`;
const row = (cells: string[], widths: number[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");

const dir = await mkdtemp(join(tmpdir(), "drive-bench-delta-"));
let rgw: RgwHandle | null = null;
let daemon: ReturnType<typeof spawn> | null = null;
try {
  // rsync daemon on 127.0.0.1, one writable module.
  const daemonRoot = join(dir, "rsyncd");
  await mkdir(daemonRoot);
  const port = await freePort();
  await writeFile(join(dir, "rsyncd.conf"), `use chroot = no\nuid = ${process.getuid?.() ?? 0}\ngid = ${process.getgid?.() ?? 0}\n[bench]\npath = ${daemonRoot}\nread only = no\n`);
  const haveRsync = spawnSync("rsync", ["--version"]).status === 0;
  if (haveRsync) {
    daemon = spawn("rsync", ["--daemon", "--no-detach", `--config=${join(dir, "rsyncd.conf")}`, `--port=${port}`, "--address=127.0.0.1"], { stdio: "ignore" });
    await new Promise((r) => setTimeout(r, 500));
  } else console.log("rsync not found (apt-get install rsync): skipped");
  const rsyncUrl = `rsync://127.0.0.1:${port}/bench`;

  const haveRclone = MODES.includes("s3") && spawnSync("rclone", ["version"]).status === 0;
  if (MODES.includes("s3")) {
    console.log("starting Ceph RGW...");
    rgw = await startRgw({ store: "bluestore" });
    await testS3Client({ ...rgw, virtualHost: null }).makeBucket("peers", rgw.region);
  }
  const rclone = rgw && (await rcloneEnv(rgw, dir));

  const servers: Array<[string, TestServer]> = [];
  for (const mode of MODES) {
    const env = mode === "s3" && rgw ? s3ServerEnv({ ...rgw, virtualHost: null }, "drive") : {};
    servers.push([mode, await startDriveServer({ args: ["--log-level", "warn"], env })]);
  }
  try {
    const widths = [32, 16, 9, 9, 16, 9, 9, 8];
    const results: string[] = [];
    for (const [n, c] of cases.entries()) {
      if (ONLY && !ONLY.includes(n)) continue;
      const old = join(dir, "old.bin");
      const now = join(dir, "new.bin");
      await c.make(old, now);
      spawnSync("sync");
      // Files changed in the last two seconds are never taken from the scan cache (scan-cache.ts).
      if (c.same) await new Promise((r) => setTimeout(r, 2100));
      console.log(`\n${c.name} (goal: ≤ ${(c.goal * 100).toFixed(1)}% of ${(SIZE / MiB).toFixed(0)} MiB on the wire)`);
      console.log(row(["tool", "push bytes", "%", "time", "pull bytes", "%", "time", "vs goal"], widths));
      const rs = haveRsync && !c.fresh ? await rsyncCase(daemonRoot, rsyncUrl, dir, old, now, `c${n}`) : null;
      for (const [mode, server] of servers) {
        const d = await driveCase(server, dir, c, old, now, `c${n}-${mode}`);
        const ok = d.push.bytes <= c.goal * SIZE && (c.fresh || d.pull.bytes <= Math.max(c.goal, 0.03) * SIZE);
        console.log(row([`drive (${mode})`, String(d.push.bytes), pct(d.push.bytes), `${d.push.seconds.toFixed(2)}s`, String(d.pull.bytes), pct(d.pull.bytes), `${d.pull.seconds.toFixed(2)}s`, ok ? "met" : "MISSED"], widths));
        if (c.fresh) {
          // The same case without compression, on new content (else it deduplicates): the time goal's baseline.
          // All new bytes: with a byte or two changed, the chunk index would let the server copy the rest.
          await c.make(old, now);
          const raw = await driveCase(server, dir, { ...c, pushArgs: ["--compress", "never"] }, old, now, `c${n}-${mode}-raw`);
          const slower = d.push.seconds / raw.push.seconds;
          console.log(row([`drive (${mode}), --compress never`, String(raw.push.bytes), pct(raw.push.bytes), `${raw.push.seconds.toFixed(2)}s`, "", "", "", ""], widths));
          console.log(`  auto vs never: ${(d.push.bytes / raw.push.bytes).toFixed(4)}x the bytes, ${slower.toFixed(3)}x the push time`);
        }
        if (rs) results.push(`${c.name}, ${mode}: drive push moves ${(rs.push.bytes / Math.max(1, d.push.bytes)).toFixed(1)}x fewer bytes than rsync's literal data`);
      }
      if (rs) console.log(row(["rsync --stats (daemon)", String(rs.push.bytes), pct(rs.push.bytes), `${rs.push.seconds.toFixed(2)}s`, String(rs.pull.bytes), pct(rs.pull.bytes), `${rs.pull.seconds.toFixed(2)}s`, ""], widths));
      if (haveRclone && rclone) {
        const r = await rcloneCase(rclone, old, now, `c${n}`);
        console.log(row(["rclone copy (RGW)", String(r.bytes), pct(r.bytes), `${r.seconds.toFixed(2)}s`, "-", "", "", ""], widths));
      }
      await rm(old);
      await rm(now);
    }
    if (results.length) console.log(`\n${results.join("\n")}`);
  } finally {
    for (const [, s] of servers) await s.stop();
  }
} finally {
  daemon?.kill();
  await rgw?.stop();
  await rm(dir, { recursive: true, force: true });
}
