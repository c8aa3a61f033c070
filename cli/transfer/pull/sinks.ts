import { constants, read, writeSync } from "node:fs";
import { open, unlink, type FileHandle } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Writable } from "node:stream";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { BackgroundFlush } from "../../../shared/io/background-flush.js";
import { CliError } from "../../errors.js";
import type { RemoteChunk } from "./download-list.js";
import type { Verified } from "./ordered-window.js";

/** Writeback starts after this much new data; big enough that each fdatasync has real work to batch. */
const FLUSH_EVERY = 64 * 1024 * 1024;
/** Copies of a chunk that was streamed to a spool file go out in pieces of this size. */
const PIECE = 1024 * 1024;

/**
 * The end of the ordered pipeline: every chunk, in file order, once
 * verified. It feeds the whole-file hasher (for a BLAKE3 content hash),
 * then the destination: the temporary file or stdout.
 */
export interface PullSink {
  /** Takes chunk `index`, verified, in file order; done with its bytes once it resolves. */
  take(index: number, chunk: Verified): Promise<void> | void;
  /** The BLAKE3 of every byte taken, in order; null when the content hash is the old chunk-list kind. */
  digest(): Buffer | null;
  /** Makes what was written durable (file) or flushed (stdout). */
  settle(): Promise<void>;
  /** After a failure: waits for writes in flight, flushes nothing more. */
  idle(): Promise<void>;
}

/**
 * Writes each chunk at its offset in the temporary file. In file order, so
 * an interrupted pull leaves a prefix of verified bytes: the next run's
 * leftover. Synchronous writes of a chunk at a time: the page cache takes
 * a MiB in well under a millisecond, with no thread-pool hop.
 */
export function fileSink(fh: FileHandle, chunks: readonly RemoteChunk[], hashWhole: boolean): PullSink {
  const whole = hashWhole ? new Blake3Hasher() : null;
  const flush = new BackgroundFlush(fh, FLUSH_EVERY);
  return {
    take(index, chunk) {
      const c = chunks[index]!;
      if ("bytes" in chunk) {
        whole?.update(chunk.bytes);
        for (let off = 0; off < chunk.bytes.length; ) off += writeSync(fh.fd, chunk.bytes, off, chunk.bytes.length - off, c.offset + off);
      }
      // A chunk streamed to disk is already in place.
      flush.wrote(c.size);
    },
    digest: () => whole?.digestBuffer() ?? null,
    settle: () => flush.settle(),
    idle: () => flush.idle(),
  };
}

/** Marks a failure to write to stdout because its reader went away (`| head`): exit code broken_pipe, no noise. */
export function brokenPipe(cause: unknown): CliError {
  return new CliError("broken_pipe", "stdout closed before the file was written (broken pipe)", { cause });
}

/**
 * Writes each chunk to a stream (stdout) in file order, each write awaited
 * before the next chunk is taken: the reader's pace holds the pipeline
 * back, through the reorder window, so memory stays bounded however slow
 * it reads. A chunk streamed to a spool file (too big for memory) is
 * copied out of it in pieces, then its spool is released.
 */
export function streamSink(out: Writable, chunks: readonly RemoteChunk[], hashWhole: boolean, release: (index: number) => Promise<void>): PullSink {
  const whole = hashWhole ? new Blake3Hasher() : null;
  const write = (bytes: Buffer) =>
    new Promise<void>((resolve, reject) => {
      out.write(bytes, (err) => {
        if (!err) return resolve();
        reject((err as NodeJS.ErrnoException).code === "EPIPE" ? brokenPipe(err) : err);
      });
    });
  return {
    async take(index, chunk: Verified) {
      if ("bytes" in chunk) {
        whole?.update(chunk.bytes);
        return write(chunk.bytes);
      }
      const c = chunks[index]!;
      const piece = Buffer.allocUnsafe(Math.min(PIECE, c.size));
      try {
        for (let done = 0; done < c.size; ) {
          const n = Math.min(piece.length, c.size - done);
          for (let got = 0; got < n; ) {
            // Only read back what was just verified on this descriptor, which only we hold.
            const r = await readAt(chunk.fd, piece, got, n - got, chunk.position + done + got);
            if (r === 0) throw new Error(`the spool of chunk ${index} ended early`);
            got += r;
          }
          whole?.update(piece.subarray(0, n));
          await write(piece.subarray(0, n)); // awaited: the piece is free again after
          done += n;
        }
      } finally {
        await release(index);
      }
    },
    digest: () => whole?.digestBuffer() ?? null,
    settle: () => new Promise<void>((resolve, reject) => out.write("", (err) => (err ? reject((err as NodeJS.ErrnoException).code === "EPIPE" ? brokenPipe(err) : err) : resolve()))),
    idle: async () => undefined,
  };
}

function readAt(fd: number, buf: Buffer, off: number, len: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, off, len, position, (err, n) => (err ? reject(err) : resolve(n))));
}

/** An anonymous file for one chunk too big to hold before it verifies, when the bytes go to a stream. */
export async function openSpool(): Promise<FileHandle> {
  const path = join(tmpdir(), `.drive-spool-${randomBytes(8).toString("hex")}`);
  const fh = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  await unlink(path);
  return fh;
}
