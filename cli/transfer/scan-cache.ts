import { createHash, randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { AVG_CHUNK_SIZE, GEAR, MAX_CHUNK_SIZE, MASK_L, MASK_S, MIN_CHUNK_SIZE } from "../../shared/rules/chunking.js";
import { scanFile, type ScanOptions, type ScannedFile } from "./scan-file.js";

/**
 * A cache of scans, so that pushing an unchanged file again reads nothing:
 * the BLAKE3 of 1 GiB takes a second, a stat takes microseconds. Like git's
 * index, an entry is trusted only while the file's identity and change
 * times are what they were (dev, inode, size, mtime and ctime in
 * nanoseconds; no user can set ctime), and only for files whose last change
 * was over RACY_MS before the scan began: a write within the same clock tick
 * as the scan would otherwise leave the times unchanged. A stale entry would
 * at worst commit the old content as a new version, so every doubt rescans.
 *
 * Entries live in $DRIVE_CACHE_DIR (default $XDG_CACHE_HOME/drive/scans or
 * ~/.cache/drive/scans), one small file per inode, private to the user;
 * DRIVE_CACHE_DIR=off turns the cache off. Past MAX_ENTRIES the oldest go.
 */
const RACY_MS = 2000;
const MAX_ENTRIES = 2000;
const VERSION = 1;
/** Cuts depend on these; an entry made under other rules is another file's scan. */
const RULES = createHash("sha256")
  .update(`${MIN_CHUNK_SIZE}:${AVG_CHUNK_SIZE}:${MAX_CHUNK_SIZE}:${MASK_S}:${MASK_L}:`)
  .update(Buffer.from(GEAR.buffer, GEAR.byteOffset, GEAR.byteLength))
  .digest("hex")
  .slice(0, 16);
const ENTRY = 8 + 4 + 32; // le64 offset, le32 size, BLAKE3

export function scanCacheDir(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.DRIVE_CACHE_DIR === "off") return null;
  if (env.DRIVE_CACHE_DIR) return env.DRIVE_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "drive", "scans");
}

interface Identity {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** scanFile, answered from the cache when the file provably did not change since it was scanned. */
export async function scanFileCached(path: string, opts: ScanOptions & { cacheDir?: string | null } = {}): Promise<ScannedFile> {
  const dir = opts.cacheDir === undefined ? scanCacheDir() : opts.cacheDir;
  if (!dir) return scanFile(path, opts);
  const started = Date.now();
  const before = await stat(path, { bigint: true }).catch(() => null);
  if (!before?.isFile()) return scanFile(path, opts); // scanFile says what is wrong with it
  const id: Identity = { dev: before.dev, ino: before.ino, size: before.size, mtimeNs: before.mtimeNs, ctimeNs: before.ctimeNs };
  const file = join(dir, createHash("sha256").update(`${id.dev}:${id.ino}`).digest("hex").slice(0, 32));
  const hit = await readEntry(file, id).catch(() => null);
  if (hit) return hit;
  const scan = await scanFile(path, opts);
  const after = await stat(path, { bigint: true }).catch(() => null);
  const unchanged = after && same(id, { dev: after.dev, ino: after.ino, size: after.size, mtimeNs: after.mtimeNs, ctimeNs: after.ctimeNs });
  const settled = Number(id.ctimeNs / 1_000_000n) < started - RACY_MS && Number(id.mtimeNs / 1_000_000n) < started - RACY_MS;
  // A cache that cannot be written costs a rescan next time, never the push.
  if (unchanged && settled) await writeEntry(dir, file, id, scan).catch(() => undefined);
  return scan;
}

function same(a: Identity, b: Identity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

function header(id: Identity, scan: Pick<ScannedFile, "contentHash" | "chunks">): string {
  return JSON.stringify({
    v: VERSION,
    rules: RULES,
    dev: String(id.dev),
    ino: String(id.ino),
    size: String(id.size),
    mtimeNs: String(id.mtimeNs),
    ctimeNs: String(id.ctimeNs),
    contentHash: scan.contentHash.toString("hex"),
    chunks: scan.chunks.length,
  });
}

async function readEntry(file: string, id: Identity): Promise<ScannedFile | null> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const data = await fh.readFile();
    const nl = data.indexOf(10);
    if (nl < 0) return null;
    const h = JSON.parse(data.subarray(0, nl).toString("utf8"));
    const ok =
      h.v === VERSION &&
      h.rules === RULES &&
      h.dev === String(id.dev) &&
      h.ino === String(id.ino) &&
      h.size === String(id.size) &&
      h.mtimeNs === String(id.mtimeNs) &&
      h.ctimeNs === String(id.ctimeNs) &&
      /^[0-9a-f]{64}$/.test(h.contentHash) &&
      Number.isSafeInteger(h.chunks) &&
      data.length === nl + 1 + h.chunks * ENTRY;
    if (!ok) return null;
    const chunks = [];
    let expect = 0;
    for (let i = 0, off = nl + 1; i < h.chunks; i++, off += ENTRY) {
      const offset = Number(data.readBigUInt64LE(off));
      const size = data.readUInt32LE(off + 8);
      if (offset !== expect || size <= 0) return null; // a damaged entry is no entry
      chunks.push({ offset, size, hash: Buffer.from(data.subarray(off + 12, off + ENTRY)) });
      expect += size;
    }
    if (BigInt(expect) !== id.size) return null;
    return { size: Number(id.size), mtimeMs: Number(id.mtimeNs / 1_000_000n), ino: Number(id.ino), dev: Number(id.dev), chunks, contentHash: Buffer.from(h.contentHash, "hex") };
  } finally {
    await fh.close();
  }
}

async function writeEntry(dir: string, file: string, id: Identity, scan: ScannedFile): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const body = Buffer.alloc(scan.chunks.length * ENTRY);
  scan.chunks.forEach((c, i) => {
    body.writeBigUInt64LE(BigInt(c.offset), i * ENTRY);
    body.writeUInt32LE(c.size, i * ENTRY + 8);
    body.set(c.hash, i * ENTRY + 12);
  });
  const temp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  const fh = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await fh.writeFile(Buffer.concat([Buffer.from(header(id, scan) + "\n"), body]));
  } finally {
    await fh.close();
  }
  await rename(temp, file);
  await prune(dir);
}

/** Keeps the newest MAX_ENTRIES entries; an entry is a few dozen bytes per MiB of its file. */
async function prune(dir: string): Promise<void> {
  // Files only: the local index keeps its folder in here too (cli/local/index-store.ts).
  const names = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name);
  if (names.length <= MAX_ENTRIES) return;
  const aged = await Promise.all(names.map(async (n) => ({ n, t: (await stat(join(dir, n)).catch(() => null))?.mtimeMs ?? 0 })));
  aged.sort((a, b) => a.t - b.t);
  for (const { n } of aged.slice(0, aged.length - MAX_ENTRIES)) await rm(join(dir, n), { force: true });
}
