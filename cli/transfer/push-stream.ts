import { randomBytes } from "node:crypto";
import { constants, unlinkSync } from "node:fs";
import { open, unlink, type FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addAbortSignal, type Readable } from "node:stream";
import { CliError } from "../errors.js";
import { ChunkHasher, type ScannedChunk } from "./chunk-hasher.js";
import type { ScannedFile } from "./scan-file.js";

/**
 * A piped push (`drive push - REMOTE`) spools its input to a private
 * temporary file while it chunks and hashes it, then pushes that file.
 *
 * Why a spool: CreateUpload needs the size and content hash up front, and
 * the server plans the parts (which to copy, how to group the rest) only
 * once every chunk is declared; a part can be sent only once it is planned.
 * A push that sends as the bytes arrive needs a protocol that plans as it
 * goes and takes the hash at completion (see the report on the Delta
 * issue). Until then the spool keeps memory bounded (a few MiB whatever the
 * length) at the cost of disk: the whole stream, once, in $TMPDIR.
 *
 * The spool is made with O_EXCL and mode 0600 and, where the system lets a
 * process reopen its own descriptors (/dev/fd: Linux, macOS), unlinked at
 * once, so nothing of it is left even after SIGKILL; elsewhere it is
 * removed on close and at exit.
 */
export interface Spool {
  /** A path that opens the spooled bytes (for the readers of a push). */
  path: string;
  /** The spooled stream's scan: size, chunks, content hash. */
  scan: ScannedFile;
  /** Closes and removes the spool; idempotent. */
  close(): Promise<void>;
}

/** Bytes gathered before each write and hash: few syscalls, little memory. */
const BATCH = 4 * 1024 * 1024;

export async function spoolStream(
  input: Readable,
  opts: { signal: AbortSignal; onHashed?: (bytes: number) => void; dir?: string },
): Promise<Spool> {
  const dir = opts.dir ?? tmpdir(); // $TMPDIR, else /tmp
  const name = join(dir, `drive-push-${randomBytes(12).toString("hex")}.spool`);
  const fh = await open(name, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
  let path = name;
  let named = true;
  const removeAtExit = () => {
    try {
      unlinkSync(name);
    } catch {
      // gone already
    }
  };
  if (await reopens(fh)) {
    await unlink(name);
    path = `/dev/fd/${fh.fd}`;
    named = false;
  } else process.once("exit", removeAtExit);

  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await fh.close().catch(() => undefined);
    if (named) {
      process.removeListener("exit", removeAtExit);
      await unlink(name).catch(() => undefined);
    }
  };
  try {
    const scan = await spoolInto(fh, addAbortSignal(opts.signal, input), opts.onHashed);
    return { path, scan, close };
  } catch (err) {
    await close();
    if (opts.signal.aborted) throw opts.signal.reason ?? err;
    const e = err as NodeJS.ErrnoException;
    if (e.code === "ENOSPC") throw new CliError("internal", `${dir}: no space left to spool standard input (a piped push keeps a copy of it there; set TMPDIR to a roomier place)`, { cause: err });
    throw err;
  }
}

/** Whether this system reopens an open file through /dev/fd/N (a new open file description, as Linux's /proc does). */
async function reopens(fh: FileHandle): Promise<boolean> {
  try {
    const again = await open(`/dev/fd/${fh.fd}`, "r");
    await again.close();
    return true;
  } catch {
    return false;
  }
}

/** Copies the stream into the spool, cutting and hashing it on the way. */
async function spoolInto(fh: FileHandle, input: Readable, onHashed?: (bytes: number) => void): Promise<ScannedFile> {
  const hasher = new ChunkHasher();
  const chunks: ScannedChunk[] = [];
  let position = 0;
  let held: Buffer[] = [];
  let heldBytes = 0;
  const flush = async () => {
    if (!heldBytes) return;
    const batch = held.length === 1 ? held[0]! : Buffer.concat(held, heldBytes);
    held = [];
    heldBytes = 0;
    for (const c of hasher.update(batch)) chunks.push(c);
    for (let at = 0; at < batch.length; ) {
      const { bytesWritten } = await fh.write(batch, at, batch.length - at, position + at);
      at += bytesWritten;
    }
    position += batch.length;
    onHashed?.(batch.length);
  };
  for await (const data of input) {
    const buf = typeof data === "string" ? Buffer.from(data) : (data as Buffer);
    held.push(buf);
    heldBytes += buf.length;
    if (heldBytes >= BATCH) await flush();
  }
  await flush();
  const { last, contentHash } = hasher.finish();
  if (last) chunks.push(last);
  const st = await fh.stat();
  return { size: position, mtimeMs: st.mtimeMs, ino: st.ino, dev: st.dev, chunks, contentHash: contentHash! };
}
