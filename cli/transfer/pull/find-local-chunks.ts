import type { FileHandle } from "node:fs/promises";
import { hashChunks } from "../scan-file.js";
import type { RemoteChunk } from "./download-list.js";
import type { LocalRef, LocalSource } from "./local-sources.js";

/** A chunk a scan of a local file cut: where it starts, how long, its BLAKE3. */
export interface ScannedChunk {
  offset: number;
  size: number;
  hash: Uint8Array;
}

/** Cuts an open file into content-defined chunks with the shared rules (shared/rules/chunking.ts) and hashes each. */
export type ChunkScanner = (fh: FileHandle, size: number, opts: { signal: AbortSignal; onHashed?: (bytes: number) => void }) => Promise<ScannedChunk[]>;

export interface LocalSources {
  /** Files that hold a prefix of this very version at its own offsets: the leftover of an interrupted pull. */
  aligned: LocalSource[];
  /** Any other files, cut by content: the old version, and its neighbours in the folder. */
  cut: LocalSource[];
}

/**
 * Which wanted chunks local files already hold, and where. Nothing found
 * here is trusted yet: each chunk is read and hashed again when it is used.
 *
 * Every source is first probed where the chunks sit in the remote file: an
 * old version holds most of its chunks at their own offsets before an
 * edit, and after an overwrite or an append too, and reading and hashing
 * is several times cheaper than cutting by content. A source to cut (not a
 * leftover) is then cut by content, for chunks that moved (after an
 * insert, in another file), but only from the end of the longest prefix
 * the probe matched: FastCDC's cut points depend only on the bytes before
 * them, so where the local bytes equal the remote ones up to a remote cut,
 * that is a local cut too, and cutting from there finds the same chunks
 * as cutting from the start. Scanning stops once every chunk is found.
 */
export async function findLocalChunks(
  chunks: readonly RemoteChunk[],
  sources: LocalSources,
  scanner: ChunkScanner | null,
  opts: { signal: AbortSignal; onHashed?: (bytes: number) => void },
): Promise<Map<number, LocalRef>> {
  const found = new Map<number, LocalRef>();
  const prefixEnd = new Map<LocalSource, number>();
  for (const source of [...sources.aligned, ...sources.cut]) {
    if (found.size === chunks.length) break;
    prefixEnd.set(source, await probeInPlace(source, chunks, found, opts));
  }
  if (!scanner || found.size === chunks.length) return found;
  const wanted = new Map<string, RemoteChunk[]>();
  for (const c of chunks) {
    if (found.has(c.index)) continue;
    const key = Buffer.from(c.hash).toString("hex");
    const list = wanted.get(key);
    if (list) list.push(c);
    else wanted.set(key, [c]);
  }
  for (const source of sources.cut) {
    if (wanted.size === 0) break;
    const from = prefixEnd.get(source) ?? 0;
    if (from >= source.size) continue;
    // A file that cannot be read to its end (it shrank, an I/O error) is no source; the pull goes on without it.
    const cut = await scanner(fromOffset(source.fh, from), source.size - from, opts).catch((err: unknown) => {
      if (opts.signal.aborted) throw err;
      return [];
    });
    for (const local of cut) {
      const key = Buffer.from(local.hash).toString("hex");
      const list = wanted.get(key);
      if (!list || list[0]!.size !== local.size) continue;
      for (const c of list) if (!found.has(c.index)) found.set(c.index, { source, offset: from + local.offset });
      wanted.delete(key);
    }
  }
  return found;
}

/**
 * Hashes the source where each remote chunk sits, as far as the source
 * reaches, and records the chunks it holds in place; returns where the
 * longest run of them from the start ends (0 when the first differs).
 */
async function probeInPlace(source: LocalSource, chunks: readonly RemoteChunk[], found: Map<number, LocalRef>, opts: { signal: AbortSignal; onHashed?: (bytes: number) => void }): Promise<number> {
  const inside: RemoteChunk[] = [];
  for (const c of chunks) {
    if (c.offset + c.size > source.size) break;
    inside.push(c);
  }
  const hashes = await hashChunks(source.fh, inside.map((c) => c.size), opts);
  let prefix = 0;
  let contiguous = true;
  for (const c of inside) {
    const same = !!hashes?.[c.index] && Buffer.from(c.hash).equals(hashes[c.index]!);
    if (same && !found.has(c.index)) found.set(c.index, { source, offset: c.offset });
    contiguous &&= same;
    if (contiguous) prefix = c.offset + c.size;
  }
  return prefix;
}

/**
 * The file as seen from `start`: the one method a scanner reads with
 * (chunkFile reads by position and nothing else), shifted. Cutting a file
 * from a known cut point, without a scan option for it.
 */
function fromOffset(fh: FileHandle, start: number): FileHandle {
  if (start === 0) return fh;
  const shifted = {
    read: (buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: number) => fh.read(buffer, offset, length, position + start),
  };
  return shifted as unknown as FileHandle;
}
