import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { Readable } from "node:stream";
import { manifestPartPath, type ManifestPart } from "./object-manifest.js";

export const FILE_CHUNK = 1 << 20;

/**
 * Streams bytes [start, end) of an object straight from its part files, one
 * file at a time: completing an upload never concatenates, so reads do.
 * Files are opened lazily, so an object with thousands of parts costs one
 * descriptor at a time. Part files are named by content hash, so a file found
 * under its manifest name holds the bytes the manifest expects, unless the
 * disk lost some: then the stream fails rather than deliver a shifted object.
 */
export function readObjectRange(objectDir: string, parts: readonly ManifestPart[], start: number, end: number): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    for (const { file, from, to } of partSlices(objectDir, parts, start, end)) {
      let read = 0;
      for await (const chunk of createReadStream(file, { start: from, end: to - 1, highWaterMark: FILE_CHUNK })) {
        read += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
      if (read !== to - from) throw new Error(`${file}: ${read} bytes where ${to - from} were expected`);
    }
  }
  return Readable.from(chunks(), { objectMode: false, highWaterMark: FILE_CHUNK });
}

/**
 * Writes bytes [start, end) of an object to `out` through two buffers that
 * take turns: one is read from disk while the other drains to the socket.
 * A GET then allocates nothing per chunk; fresh 1 MiB buffers for every read
 * kept the garbage collector busy for over half a second per GiB served.
 */
export async function sendObjectRange(
  objectDir: string,
  parts: readonly ManifestPart[],
  start: number,
  end: number,
  out: { write(chunk: Buffer, done: (err?: Error | null) => void): boolean; destroyed?: boolean },
): Promise<void> {
  const buffers = [Buffer.allocUnsafe(FILE_CHUNK), Buffer.allocUnsafe(FILE_CHUNK)];
  const pending: Array<Promise<void>> = [Promise.resolve(), Promise.resolve()];
  let turn = 0;
  for (const { file, from, to } of partSlices(objectDir, parts, start, end)) {
    let pos = from;
    const fh = await open(file, "r");
    try {
      while (pos < to) {
        const buf = buffers[turn]!;
        await pending[turn]; // this buffer's last write has left it
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, to - pos), pos);
        if (bytesRead === 0) throw new Error(`${file}: ended at ${pos} bytes where ${to} were expected`);
        if (out.destroyed) throw new Error("client went away");
        pos += bytesRead;
        const chunk = buf.subarray(0, bytesRead);
        pending[turn] = new Promise<void>((resolve, reject) => out.write(chunk, (err) => (err ? reject(err) : resolve())));
        turn ^= 1;
      }
    } finally {
      await fh.close();
    }
  }
  await Promise.all(pending);
}

/** The part files that hold bytes [start, end) of an object, with the range [from, to) of each. */
function* partSlices(
  objectDir: string,
  parts: readonly ManifestPart[],
  start: number,
  end: number,
): Generator<{ file: string; from: number; to: number }> {
  let offset = 0;
  for (const part of parts) {
    const partStart = offset;
    offset += part.size;
    if (offset <= start || part.size === 0) continue;
    if (partStart >= end) break;
    yield {
      file: manifestPartPath(objectDir, part),
      from: Math.max(0, start - partStart),
      to: Math.min(part.size, end - partStart),
    };
  }
}
