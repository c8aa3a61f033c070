import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { BufferTurns, type ChunkSink } from "../../../shared/io/buffer-turns.js";
import { Readable } from "node:stream";

export const FILE_CHUNK = 1 << 20;

/** One file of an object, in order: a manifest's part, or the whole of an object PUT in one piece. */
export interface ObjectFile {
  file: string;
  size: number;
}

/**
 * Streams bytes [start, end) of an object straight from its part files, one
 * file at a time: completing an upload never concatenates, so reads do.
 * Files are opened lazily, so an object with thousands of parts costs one
 * descriptor at a time. Part files are named by content hash, so a file found
 * under its manifest name holds the bytes the manifest expects, unless the
 * disk lost some: then the stream fails rather than deliver a shifted object.
 */
export function readObjectRange(parts: readonly ObjectFile[], start: number, end: number): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    for (const { file, from, to } of partSlices(parts, start, end)) {
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

/** Writes bytes [start, end) of an object to `out`, allocating nothing per chunk (see BufferTurns). */
export async function sendObjectRange(
  parts: readonly ObjectFile[],
  start: number,
  end: number,
  out: ChunkSink,
): Promise<void> {
  const turns = new BufferTurns(out, FILE_CHUNK);
  for (const { file, from, to } of partSlices(parts, start, end)) {
    const fh = await open(file, "r");
    try {
      const sent = await turns.send(fh, from, to);
      if (sent !== to - from) throw new Error(`${file}: ended at ${from + sent} bytes where ${to} were expected`);
    } finally {
      await fh.close();
    }
  }
  await turns.flush();
}

/** The part files that hold bytes [start, end) of an object, with the range [from, to) of each. */
function* partSlices(
  parts: readonly ObjectFile[],
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
      file: part.file,
      from: Math.max(0, start - partStart),
      to: Math.min(part.size, end - partStart),
    };
  }
}
