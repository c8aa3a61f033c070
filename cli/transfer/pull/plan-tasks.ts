import type { RemoteChunk } from "./download-list.js";
import type { LocalRef } from "./local-sources.js";

/**
 * What a pull does for each chunk, in file order: a run of chunks fetched
 * with one ranged GET, a chunk read from a local file, a chunk copied from
 * an earlier place in the file being written, or (old versions only) a
 * chunk too big to hold in memory, streamed straight to disk.
 */
export type PullTask =
  | { kind: "fetch"; first: number; end: number; plainStart: number; plainEnd: number }
  | { kind: "local"; chunk: number; ref: LocalRef; plainStart: number; plainEnd: number }
  | { kind: "copy"; chunk: number; from: number; plainStart: number; plainEnd: number }
  | { kind: "stream"; chunk: number; plainStart: number; plainEnd: number };

export interface PlanOptions {
  /** Most stored bytes one GET asks for. */
  getCap: number;
  /** Most plaintext bytes one GET's chunks may hold (compressed chunks expand). */
  plainCap: number;
  /** Chunks larger than this are streamed to disk, never held in memory. */
  bufferLimit: number;
  /** Whether a chunk may be copied from an earlier chunk of the file being written (not for stdout). */
  copyWithin: boolean;
}

/**
 * Plans the tasks: each chunk found locally is read from there; a chunk
 * whose hash an earlier chunk of the file already has is copied from it;
 * the rest are fetched, neighbours whose stored bytes lie back to back
 * merged into one GET up to the caps, so a long missing stretch costs a
 * few GETs and an isolated one a GET of its own.
 */
export function planTasks(chunks: readonly RemoteChunk[], found: ReadonlyMap<number, LocalRef>, opts: PlanOptions): PullTask[] {
  const tasks: PullTask[] = [];
  const firstWithHash = new Map<string, number>();
  let group: { first: number; end: number; stored: number; plain: number } | null = null;
  const close = () => {
    if (!group) return;
    tasks.push({ kind: "fetch", first: group.first, end: group.end, plainStart: chunks[group.first]!.offset, plainEnd: chunks[group.end - 1]!.offset + chunks[group.end - 1]!.size });
    group = null;
  };
  for (const c of chunks) {
    const span = { plainStart: c.offset, plainEnd: c.offset + c.size };
    const key = Buffer.from(c.hash).toString("hex");
    const earlier = firstWithHash.get(key);
    if (earlier === undefined) firstWithHash.set(key, c.index);
    const ref = found.get(c.index);
    if (ref) {
      close();
      tasks.push({ kind: "local", chunk: c.index, ref, ...span });
    } else if (earlier !== undefined && opts.copyWithin && c.size <= opts.bufferLimit) {
      close();
      tasks.push({ kind: "copy", chunk: c.index, from: earlier, ...span });
    } else if (c.size > opts.bufferLimit) {
      close();
      tasks.push({ kind: "stream", chunk: c.index, ...span });
    } else {
      const prev = group ? chunks[group.end - 1]! : null;
      const joins =
        group &&
        prev!.storedOffset + prev!.storedSize === c.storedOffset &&
        group.stored + c.storedSize <= opts.getCap &&
        group.plain + c.size <= opts.plainCap;
      if (!joins) {
        close();
        group = { first: c.index, end: c.index, stored: 0, plain: 0 };
      }
      group!.end = c.index + 1;
      group!.stored += c.storedSize;
      group!.plain += c.size;
    }
  }
  close();
  return tasks;
}
