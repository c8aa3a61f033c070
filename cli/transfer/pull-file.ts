import { constants } from "node:fs";
import { lstat, open, rename, stat, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { contentHash, hex, type ChunkDigest } from "../../shared/rules/content-hash.js";
import { CliError } from "../errors.js";
import type { DriveClient } from "../rpc/drive-client.js";
import type { TransferListener } from "./events.js";
import { BackgroundFlush } from "../../shared/io/background-flush.js";
import { createAgents, destroyAgents, getRange, PartHttpError, defaultReadTimeoutMs } from "./part-http.js";
import { runParallel } from "./run-parallel.js";
import { hashChunks } from "./scan-file.js";
import { sendWithRetry, type TransferOptions } from "./transfer-options.js";

/** Writeback starts after this much new data; big enough that each fdatasync has real work to batch. */
const FLUSH_EVERY = 64 * 1024 * 1024;

export interface PullRequest extends TransferOptions {
  remote: string;
  /** Destination file path (already resolved from a folder, if one was given). */
  local: string;
  /** A specific revision; 0 for the current one. */
  revision?: number;
  /** A chunk GET that moves no byte this long is retried. */
  readTimeoutMs?: number;
}

export interface PullResult {
  revision: number;
  contentHash: string;
  size: number;
}

/**
 * Downloads one file into a temporary file beside the destination, checks
 * every chunk against its BLAKE3 and the chunk list against the content
 * hash, then renames it into place. The destination changes only by that
 * rename, so a failure or a kill leaves it as it was; run again, a pull
 * keeps the chunks of the temporary file that still verify.
 *
 * The temporary file is opened once, safely (see openPartial), and every
 * read and write of it goes through that one descriptor. A chunk is
 * written only within its own range and counted only once its hash
 * verified, so the rename happens only when every chunk was verified,
 * in this run or from the leftover file: no byte in it is unverified.
 */
export async function pullFile(client: DriveClient, req: PullRequest, emit: TransferListener): Promise<PullResult> {
  const dl = await client.files.getDownload({ path: req.remote, revision: BigInt(req.revision ?? 0) }, { signal: req.signal });
  const revision = Number(dl.revision);
  const size = Number(dl.file?.size ?? 0);
  const chunks: ChunkDigest[] = dl.chunks.map((c) => ({ size: Number(c.size), hash: c.hash }));
  const expected = Buffer.from(dl.file?.contentHash ?? []);
  if (!contentHash(chunks).equals(expected) || chunks.reduce((s, c) => s + c.size, 0) !== size) {
    throw new CliError("integrity", `${req.remote}: the server's chunk list does not match the content hash`);
  }
  const offsets: number[] = [];
  chunks.reduce((off, c) => (offsets.push(off), off + c.size), 0);

  const temp = join(dirname(req.local), `.${basename(req.local)}.${hex(expected).slice(0, 16)}.drive-partial`);
  const out = await openPartial(temp); // keeps what an earlier run fetched
  const agents = createAgents(req.concurrency, req.readTimeoutMs ?? defaultReadTimeoutMs());
  const flush = new BackgroundFlush(out.fh, FLUSH_EVERY);
  try {
    let have: Set<number>;
    if (out.size === size) {
      emit({ type: "phase", phase: "verify" });
      have = await verifiedChunks(out.fh, chunks, (n) => emit({ type: "hashed", bytes: n }), req.signal);
    } else {
      await out.fh.truncate(size);
      have = new Set();
    }
    const verified = new Set(have);

    const missing = chunks.map((_, i) => i).filter((i) => !have.has(i));
    emit({
      type: "start",
      op: "pull",
      remote: req.remote,
      local: req.local,
      bytesTotal: size,
      partsTotal: chunks.length,
      bytesSkipped: [...have].reduce((s, i) => s + chunks[i]!.size, 0),
      partsSkipped: have.size,
    });
    emit({ type: "phase", phase: "transfer" });

    let url = dl.url;
    let refreshing: Promise<void> | null = null;
    const refresh = () =>
      (refreshing ??= client.files
        .getDownload({ path: req.remote, revision: dl.revision }, { signal: req.signal })
        .then((r) => void (url = r.url))
        .finally(() => (refreshing = null)));

    await runParallel(
      missing,
      req.concurrency,
      async (i, signal) => {
        const chunk = chunks[i]!;
        emit({ type: "part_start", partNumber: i + 1, size: chunk.size });
        await sendWithRetry(req, i + 1, emit, signal, async (onBytes) => {
          try {
            await getRange({ url, headers: {}, offset: offsets[i]!, size: chunk.size, hash: chunk.hash, fd: out.fh.fd, agents, signal, onBytes });
          } catch (err) {
            if (err instanceof PartHttpError && err.kind === "expired") await refresh();
            throw err;
          }
        });
        verified.add(i);
        emit({ type: "part_done", partNumber: i + 1, size: chunk.size });
        flush.wrote(chunk.size);
      },
      req.signal,
    );
    emit({ type: "phase", phase: "commit" });
    // Content, not size: every chunk hashed right, here or in the leftover file.
    if (verified.size !== chunks.length || (await out.fh.stat()).size !== size) {
      throw new CliError("integrity", `${temp}: not every chunk was verified; run the pull again`);
    }
    await flush.settle();
  } catch (err) {
    await flush.idle();
    if (err instanceof PartHttpError && (err.kind === "mismatch" || err.kind === "untrusted")) {
      throw new CliError("integrity", `${req.remote}: ${err.message}; the store's copy is damaged or it lied, nothing was written to ${req.local}`, {
        cause: err,
      });
    }
    throw err;
  } finally {
    destroyAgents(agents);
    await out.fh.close();
  }
  await out.checkStillOurs();
  await rename(temp, req.local);
  await syncDir(dirname(req.local));
  emit({ type: "done", revision, contentHash: hex(expected), deduplicated: false });
  return { revision, contentHash: hex(expected), size };
}

/**
 * Opens the temporary file without following a symlink, creating it if
 * absent and keeping a leftover's bytes, and refuses anything but a
 * regular file of ours with one link: its name is predictable, and in a
 * shared folder another user could plant a link there for our pull to
 * write through. O_NONBLOCK keeps a planted FIFO from blocking the open.
 */
async function openPartial(temp: string): Promise<{ fh: FileHandle; size: number; checkStillOurs(): Promise<void> }> {
  const flags = constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK;
  const refuse = (why: string, cause?: unknown) =>
    new CliError("internal", `${temp}: refusing to use the temporary file: ${why}; remove it and run the pull again`, { cause });
  let fh: FileHandle;
  try {
    fh = await open(temp, flags, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ELOOP") throw refuse("it is a symbolic link", err);
    throw err;
  }
  try {
    const st = await fh.stat();
    const uid = process.getuid?.();
    if (!st.isFile()) throw refuse("it is not a regular file");
    if (uid !== undefined && st.uid !== uid) throw refuse(`it belongs to another user (uid ${st.uid})`);
    if (st.nlink !== 1) throw refuse(`it has ${st.nlink} links, so it is another file's name too`);
    return {
      fh,
      size: st.size,
      // The rename goes by name: make sure the name still is the file we wrote and verified.
      async checkStillOurs() {
        const now = await lstat(temp).catch(() => null);
        if (!now || now.ino !== st.ino || now.dev !== st.dev) throw refuse("it was replaced during the pull");
      },
    };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** Chunks of a leftover temporary file that already hold the right bytes. */
async function verifiedChunks(
  fh: FileHandle,
  chunks: ChunkDigest[],
  onHashed: (n: number) => void,
  signal: AbortSignal,
): Promise<Set<number>> {
  const hashes = await hashChunks(fh, chunks.map((c) => c.size), { signal, onHashed });
  return new Set(chunks.map((_, i) => i).filter((i) => hashes?.[i]?.equals(chunks[i]!.hash)));
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, "r").catch(() => null);
  if (!d) return;
  await d.sync().catch(() => undefined); // not every filesystem can fsync a folder
  await d.close();
}

/** Where `drive pull REMOTE [LOCAL]` writes: LOCAL, or into it when it is a folder. */
export async function resolvePullTarget(remote: string, local: string | undefined): Promise<string> {
  const name = basename(remote);
  let target = local ?? name;
  if (local?.endsWith("/")) target = join(local, name);
  else if (local && (await stat(local).catch(() => null))?.isDirectory()) target = join(local, name);
  // A FIFO, socket or device at the destination is not ours to replace with a file.
  const existing = await lstat(target).catch(() => null);
  if (existing && !existing.isFile() && !existing.isSymbolicLink()) throw new CliError("usage", `${target} exists and is not a regular file; refusing to replace it`);
  const folder = await stat(dirname(target)).catch(() => null);
  if (!folder?.isDirectory()) throw new CliError("not_found", `destination folder ${dirname(target)} does not exist`);
  return target;
}

