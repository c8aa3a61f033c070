import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const script = fileURLToPath(new URL("./ceph-rgw.sh", import.meta.url));

export interface RgwHandle {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
  dir: string;
  stop(): Promise<void>;
}

export interface StartRgwOptions {
  /** Where the cluster lives; a fresh temp folder (removed on stop) when omitted. */
  dir?: string;
  /** memstore (default) keeps data in RAM; bluestore uses a sparse file in dir. */
  store?: "memstore" | "bluestore";
  /** The memstore cap; the script defaults to 4 GiB. */
  memBytes?: number;
  /** Sets rgw_dns_name, so Host: BUCKET.dnsName:PORT is virtual-host style. */
  dnsName?: string;
}

function onPath(bin: string): boolean {
  // /usr/bin too: a test runner's PATH may be trimmed.
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/bin", "/usr/sbin"];
  return dirs.some((dir) => {
    if (!dir) return false;
    try {
      accessSync(join(dir, bin), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Whether Ceph's daemons are installed, so RGW-backed tests can be skipped cleanly. */
export function rgwInstalled(): boolean {
  return ["radosgw", "radosgw-admin", "ceph-mon", "ceph-osd", "monmaptool"].every(onPath);
}

async function readEnv(file: string): Promise<(key: string) => string> {
  const vars = new Map<string, string>();
  for (const line of (await readFile(file, "utf8")).split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) vars.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return (key) => {
    const value = vars.get(key);
    if (!value) throw new Error(`${file} lacks ${key}`);
    return value;
  };
}

/** Starts a one-node Ceph cluster with RADOS Gateway on 127.0.0.1 (see ceph-rgw.sh). */
export async function startRgw(opts: StartRgwOptions = {}): Promise<RgwHandle> {
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "drive-rgw-")));
  const args = ["start", dir];
  if (opts.store) args.push("--store", opts.store);
  if (opts.memBytes !== undefined) args.push("--mem-bytes", String(opts.memBytes));
  if (opts.dnsName) args.push("--dns-name", opts.dnsName);

  const stop = async (): Promise<void> => {
    await run("bash", [script, "stop", dir], { timeout: 60_000 });
    if (ownDir) await rm(dir, { recursive: true, force: true });
  };

  try {
    // The script bounds each step itself; this only guards against the script hanging.
    await run("bash", [script, ...args], { timeout: 180_000 });
    const env = await readEnv(join(dir, "env"));
    return {
      endpoint: env("DRIVE_TEST_S3_ENDPOINT"),
      accessKey: env("DRIVE_TEST_S3_ACCESS_KEY"),
      secretKey: env("DRIVE_TEST_S3_SECRET_KEY"),
      region: env("DRIVE_TEST_S3_REGION"),
      dir,
      stop,
    };
  } catch (err) {
    await stop().catch(() => {});
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`ceph-rgw: start failed: ${stderr || (err as Error).message}`, { cause: err });
  }
}
