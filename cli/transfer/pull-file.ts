import { open, rename, stat, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { contentHash, hex, type ChunkDigest } from "../../server/core/content-hash.js";
import { CliError } from "../errors.js";
import type { DriveClient } from "../rpc/drive-client.js";
import type { TransferListener } from "./events.js";
import { BackgroundFlush } from "../../server/core/background-flush.js";
import { createAgents, destroyAgents, getRange, PartHttpError } from "./part-http.js";
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
  const fh = await open(temp, "a+"); // creates it, keeps what an earlier run fetched
  let have: Set<number>;
  try {
    if ((await fh.stat()).size === size) {
      emit({ type: "phase", phase: "verify" });
      have = await verifiedChunks(fh, chunks, (n) => emit({ type: "hashed", bytes: n }), req.signal);
    } else {
      await fh.truncate(size);
      have = new Set();
    }
  } finally {
    await fh.close();
  }

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

  const agents = createAgents(req.concurrency);
  const out = await open(temp, "r+");
  const flush = new BackgroundFlush(out, FLUSH_EVERY);
  try {
    await runParallel(
      missing,
      req.concurrency,
      async (i, signal) => {
        const chunk = chunks[i]!;
        emit({ type: "part_start", partNumber: i + 1, size: chunk.size });
        await sendWithRetry(req, i + 1, emit, signal, async (onBytes) => {
          try {
            await getRange({ url, headers: {}, offset: offsets[i]!, size: chunk.size, hash: chunk.hash, file: temp, agents, signal, onBytes });
          } catch (err) {
            if (err instanceof PartHttpError && err.kind === "expired") await refresh();
            throw err;
          }
        });
        emit({ type: "part_done", partNumber: i + 1, size: chunk.size });
        flush.wrote(chunk.size);
      },
      req.signal,
    );
    emit({ type: "phase", phase: "commit" });
    if ((await out.stat()).size !== size) throw new CliError("integrity", `${temp} has the wrong size; run the pull again`);
    await flush.settle();
  } catch (err) {
    if (err instanceof PartHttpError && err.kind === "mismatch") {
      throw new CliError("integrity", `${req.remote}: ${err.message}; the stored copy is damaged, nothing was written to ${req.local}`, { cause: err });
    }
    throw err;
  } finally {
    destroyAgents(agents);
    await out.close();
  }
  await rename(temp, req.local);
  await syncDir(dirname(req.local));
  emit({ type: "done", revision, contentHash: hex(expected), deduplicated: false });
  return { revision, contentHash: hex(expected), size };
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
  const folder = await stat(dirname(target)).catch(() => null);
  if (!folder?.isDirectory()) throw new CliError("not_found", `destination folder ${dirname(target)} does not exist`);
  return target;
}

