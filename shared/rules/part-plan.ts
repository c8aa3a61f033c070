import { MAX_CHUNK_SIZE } from "./chunking.js";
import { MAX_PART_SIZE, MAX_PARTS, MiB, MIN_PART_SIZE } from "./part-rules.js";

/**
 * The part plan: how an upload's chunks group into S3 parts, and which
 * parts the server fills by copying bytes the namespace already stores.
 * A pure function of the chunk list, the part size and where chunks sit,
 * so it is property-tested (test/unit/part-plan.test.ts).
 *
 * What planParts promises, for any input it does not throw on:
 * - The parts cover the chunks exactly once, in order: part k+1 starts at
 *   the chunk after part k's last; part numbers run 1, 2, ...; each part's
 *   size is the sum of its chunks' sizes.
 * - A copy part's chunks sit back to back in one blob: chunk firstChunk + i
 *   is chunk firstSeq + i of blobId, one of the locations locate() gave for
 *   it, and stored bytes [start, end) of the blob are exactly theirs.
 * - Every part but the last holds at least MIN_PART_SIZE: stored bytes
 *   (end - start) for a copy, plaintext for a part the client sends (which
 *   the client stores raw when compression would take it under). The last
 *   part, copy or not, may be smaller.
 * - No part holds more than MAX_PART_SIZE, plaintext or stored.
 * - At most MAX_PARTS parts. planParts throws (a plain Error) only when
 *   even parts of 5 GiB cannot fit the file in 10,000, which takes a file
 *   within a few GiB of MAX_FILE_SIZE, or for a part size out of range.
 * - Deterministic: the same input gives the same plan.
 *
 * How: (1) runs: maximal stretches of chunks that locate() places at
 * consecutive seqs of one blob, the longest of up to MAX_CANDIDATES
 * starting locations each; (2) runs of at least 5 MiB stored become copy
 * parts, split into pieces of at most 5 GiB; a run at the very end of the
 * file becomes a copy at any size, as the last part has no minimum; (3) a
 * stretch the client sends between copies that is under 5 MiB takes chunks
 * off the edge of a neighbouring run (which keeps at least 5 MiB stored),
 * or absorbs the run whole when that is not enough, so a run shorter than
 * 5 MiB, or one whose bytes are needed to pad a short stretch, is sent by
 * the client like new bytes; (4) the client's stretches are grouped
 * content-defined: a part ends after a chunk whose hash passes a test once
 * it holds a quarter of the part size, so boundaries resynchronise after an insert
 * as chunk boundaries do (see groupingFor); (5) when that makes over 10,000 parts, client
 * parts grow and the shortest runs are sent instead of copied until the
 * plan fits.
 */
export interface PlanChunk {
  size: number;
  hash: Uint8Array;
}

/** One place the namespace stores a chunk: chunk `seq` of blob `blobId`, at [storedOffset, storedOffset + storedSize). */
export interface ChunkLocation {
  blobId: number;
  seq: number;
  storedOffset: number;
  storedSize: number;
}

export interface PlannedPart {
  partNumber: number;
  firstChunk: number;
  chunkCount: number;
  /** Plaintext bytes. */
  size: number;
  /** Set when the server copies the part: chunks firstSeq.. of blob blobId, stored bytes [start, end). */
  copy?: { blobId: number; firstSeq: number; start: number; end: number };
}

/**
 * How many of a chunk's locations may start a run. locate() should give
 * the most useful first (the newest blob, say); every location it gives is
 * still looked at to extend a run.
 */
export const MAX_CANDIDATES = 4;

/** A stretch of chunks [first, end) stored back to back: locs[i - first] is chunk i's place. */
interface Run {
  first: number;
  end: number;
  locs: ChunkLocation[];
}

/** Grouping of the client's stretches: parts of min..max plaintext, ending past min at a boundary chunk, about one per `spacing` bytes. */
interface Grouping {
  min: number;
  max: number;
  spacing: number;
}

/**
 * Plans the parts; see the file's comment for what it promises. `partSize`
 * is the target plaintext size of the parts the client sends (5 MiB to
 * 5 GiB, after partSizeFor); `locate(i)` gives the places chunk i is
 * already stored in the namespace, or none, and is called once per chunk.
 */
export function planParts(
  chunks: readonly PlanChunk[],
  partSize: number,
  locate: (chunk: number) => readonly ChunkLocation[],
): PlannedPart[] {
  if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE || partSize > MAX_PART_SIZE) {
    throw new Error(`part size must be between 5 MiB and 5 GiB, not ${partSize} bytes`);
  }
  if (chunks.length === 0) return [];
  const runs = findRuns(chunks.length, locate);
  // Over 10,000 parts: double the client parts and the smallest run worth a copy, until it fits.
  for (let target = partSize, minCopy = MIN_PART_SIZE; ; target = Math.min(MAX_PART_SIZE, 2 * target), minCopy *= 2) {
    const parts = plan(chunks, runs, groupingFor(target), minCopy);
    if (parts.length <= MAX_PARTS) return parts;
    if (target === MAX_PART_SIZE) break;
  }
  const parts = plan(chunks, runs, fullParts(), Infinity);
  if (parts.length <= MAX_PARTS) return parts;
  throw new Error(`${chunks.length} chunks need ${parts.length} parts, over the ${MAX_PARTS}-part maximum even at 5 GiB a part`);
}

/**
 * Grouping for a target part size: parts of at least size/4 (and 5 MiB),
 * at most 4 × size (and 5 GiB), ending at the first boundary chunk past
 * the minimum. A chunk is a boundary with a probability proportional to its
 * size (boundary()), one per size - min bytes on average, so parts average
 * about `size` whatever the chunks' sizes. A low minimum next to the
 * spacing of boundaries is what makes two versions fall back into step soon
 * after an edit; a spacing of at least 3.5 MiB keeps that true for 5 MiB
 * parts (which then average about 8 MiB). The maximum leaves room for a
 * short last part to borrow 5 MiB from the one before it.
 */
function groupingFor(size: number): Grouping {
  const min = Math.max(MIN_PART_SIZE, Math.floor(size / 4));
  const max = Math.min(MAX_PART_SIZE, Math.max(4 * size, 2 * (MIN_PART_SIZE + MAX_CHUNK_SIZE)));
  return { min, max, spacing: Math.max(size - min, 3.5 * MiB) };
}

/** The last resort: parts as full as 5 GiB allows. */
function fullParts(): Grouping {
  return { min: MAX_PART_SIZE, max: MAX_PART_SIZE, spacing: 0 };
}

/** Maximal runs, left to right: from each chunk, the longest run any of its first few locations starts. */
function findRuns(count: number, locate: (chunk: number) => readonly ChunkLocation[]): Run[] {
  const places: (readonly ChunkLocation[])[] = [];
  for (let i = 0; i < count; i++) places.push(locate(i));
  const runs: Run[] = [];
  for (let i = 0; i < count; ) {
    let best: ChunkLocation[] | null = null;
    let bestStored = 0;
    for (const start of places[i]!.slice(0, MAX_CANDIDATES)) {
      const locs = [start];
      let stored = start.storedSize;
      for (let j = i + 1; j < count; j++) {
        const prev = locs[locs.length - 1]!;
        const next = places[j]!.find(
          (l) => l.blobId === prev.blobId && l.seq === prev.seq + 1 && l.storedOffset === prev.storedOffset + prev.storedSize,
        );
        if (!next) break;
        locs.push(next);
        stored += next.storedSize;
      }
      if (!best || stored > bestStored) {
        best = locs;
        bestStored = stored;
      }
    }
    if (!best) {
      i++;
      continue;
    }
    runs.push({ first: i, end: i + best.length, locs: best });
    i += best.length;
  }
  return runs;
}

function plan(chunks: readonly PlanChunk[], found: readonly Run[], grouping: Grouping, minCopy: number): PlannedPart[] {
  const n = chunks.length;
  const plain = (a: number, b: number) => {
    let sum = 0;
    for (let i = a; i < b; i++) sum += chunks[i]!.size;
    return sum;
  };
  // Copies: runs big enough, and a run that ends the file at any size.
  const runs = found.filter((r) => r.end === n || storedOf(r, r.first, r.end) >= minCopy).map((r) => ({ ...r }));
  padShortStretches(runs, n, plain);

  const parts: PlannedPart[] = [];
  const push = (firstChunk: number, end: number, copy?: PlannedPart["copy"]) => {
    parts.push({ partNumber: parts.length + 1, firstChunk, chunkCount: end - firstChunk, size: plain(firstChunk, end), ...(copy ? { copy } : {}) });
  };
  let at = 0;
  for (const run of runs) {
    if (at < run.first) for (const [a, b] of groupStretch(chunks, at, run.first, grouping, false)) push(a, b);
    for (const [a, b] of splitRun(chunks, run, run.end === n)) {
      const first = run.locs[a - run.first]!;
      const lastLoc = run.locs[b - 1 - run.first]!;
      push(a, b, { blobId: first.blobId, firstSeq: first.seq, start: first.storedOffset, end: lastLoc.storedOffset + lastLoc.storedSize });
    }
    at = run.end;
  }
  if (at < n) for (const [a, b] of groupStretch(chunks, at, n, grouping, true)) push(a, b);
  return parts;
}

function storedOf(run: Run, a: number, b: number): number {
  let sum = 0;
  for (let i = a; i < b; i++) sum += run.locs[i - run.first]!.storedSize;
  return sum;
}

/**
 * Makes every stretch the client sends between two copies at least
 * MIN_PART_SIZE of plaintext (the stretch at the file's end may be
 * shorter). A short stretch takes chunks off the end of the run before it,
 * then off the start of the run after it, as long as each keeps
 * MIN_PART_SIZE stored (the run that ends the file needs keep nothing);
 * when that is not enough it absorbs the smaller neighbour whole, and the
 * merged stretch is looked at again. `runs` is changed in place.
 */
function padShortStretches(runs: Run[], n: number, plain: (a: number, b: number) => number): void {
  for (let k = 0; k < runs.length; ) {
    const left = k > 0 ? runs[k - 1]! : null;
    const right = runs[k]!;
    const gapStart = left ? left.end : 0;
    let have = plain(gapStart, right.first);
    if (have === 0 || have >= MIN_PART_SIZE) {
      k++;
      continue;
    }
    // How far each neighbour could give: chunks off left's end, then right's start.
    let takeLeft = 0;
    if (left) {
      let stored = storedOf(left, left.first, left.end);
      for (let i = left.end - 1; i >= left.first && have < MIN_PART_SIZE; i--) {
        const s = left.locs[i - left.first]!.storedSize;
        if (stored - s < MIN_PART_SIZE) break;
        stored -= s;
        have += plain(i, i + 1);
        takeLeft++;
      }
    }
    let takeRight = 0;
    const rightKeeps = right.end === n ? 0 : MIN_PART_SIZE;
    let stored = storedOf(right, right.first, right.end);
    for (let i = right.first; i < right.end - 1 && have < MIN_PART_SIZE; i++) {
      const s = right.locs[i - right.first]!.storedSize;
      if (stored - s < rightKeeps) break;
      stored -= s;
      have += plain(i, i + 1);
      takeRight++;
    }
    if (have >= MIN_PART_SIZE) {
      if (left && takeLeft) {
        left.end -= takeLeft;
        left.locs.length -= takeLeft;
      }
      if (takeRight) {
        right.first += takeRight;
        right.locs.splice(0, takeRight);
      }
      k++;
      continue;
    }
    // Not enough: send the smaller neighbour's bytes too, and look at the merged stretch again.
    if (left && storedOf(left, left.first, left.end) <= storedOf(right, right.first, right.end)) {
      runs.splice(k - 1, 1);
      k--;
    } else {
      runs.splice(k, 1);
    }
  }
}

/**
 * Pieces of a copy run, each at most MAX_PART_SIZE stored and plaintext,
 * each at least MIN_PART_SIZE stored unless it ends the file: as few as
 * can be, of about equal stored size.
 */
function splitRun(chunks: readonly PlanChunk[], run: Run, endsFile: boolean): Array<[number, number]> {
  const stored = storedOf(run, run.first, run.end);
  let plainTotal = 0;
  for (let i = run.first; i < run.end; i++) plainTotal += chunks[i]!.size;
  if (stored <= MAX_PART_SIZE && plainTotal <= MAX_PART_SIZE) return [[run.first, run.end]];
  const count = Math.max(Math.ceil(stored / MAX_PART_SIZE), Math.ceil(plainTotal / MAX_PART_SIZE));
  const target = stored / count;
  const pieces: Array<[number, number]> = [];
  let a = run.first;
  let s = 0;
  let p = 0;
  for (let i = run.first; i < run.end; i++) {
    const si = run.locs[i - run.first]!.storedSize;
    const pi = chunks[i]!.size;
    if (i > a && (s + si > MAX_PART_SIZE || p + pi > MAX_PART_SIZE || s >= target)) {
      pieces.push([a, i]);
      a = i;
      s = 0;
      p = 0;
    }
    s += si;
    p += pi;
  }
  pieces.push([a, run.end]);
  // A short last piece borrows from the one before (which is far over 5 MiB: at least half of 5 GiB).
  if (!endsFile && pieces.length > 1 && s < MIN_PART_SIZE) {
    const prev = pieces[pieces.length - 2]!;
    const lastPiece = pieces[pieces.length - 1]!;
    while (s < MIN_PART_SIZE && prev[1] - prev[0] > 1) {
      prev[1]--;
      lastPiece[0]--;
      s += run.locs[lastPiece[0] - run.first]!.storedSize;
    }
  }
  return pieces;
}

/**
 * Groups chunks [a, b) into parts the client sends, content-defined: a part
 * ends after a chunk whose hash passes boundary() once it holds
 * grouping.min, and before a chunk that would take it over grouping.max.
 * Unless the stretch ends the file, a short last part borrows chunks from
 * the one before, or merges into it when the two fit in one.
 */
function groupStretch(chunks: readonly PlanChunk[], a: number, b: number, grouping: Grouping, endsFile: boolean): Array<[number, number]> {
  const groups: Array<[number, number]> = [];
  let start = a;
  let acc = 0;
  for (let i = a; i < b; i++) {
    const size = chunks[i]!.size;
    if (acc > 0 && acc + size > grouping.max) {
      groups.push([start, i]);
      start = i;
      acc = 0;
    }
    acc += size;
    if (acc >= grouping.min && boundary(chunks[i]!, grouping.spacing)) {
      groups.push([start, i + 1]);
      start = i + 1;
      acc = 0;
    }
  }
  if (start < b) groups.push([start, b]);
  else acc = plainOf(chunks, ...groups[groups.length - 1]!);
  if (endsFile || groups.length < 2 || acc >= MIN_PART_SIZE) return groups;
  const last = groups.pop()!;
  const prev = groups.pop()!;
  const prevSize = plainOf(chunks, ...prev);
  if (prevSize + acc <= grouping.max) {
    groups.push([prev[0], last[1]]);
    return groups;
  }
  // Too big as one: move chunks from prev's end until the last holds 5 MiB.
  let cut = last[0];
  for (let s = acc; s < MIN_PART_SIZE; ) s += chunks[--cut]!.size;
  groups.push([prev[0], cut], [cut, last[1]]);
  return groups;
}

function plainOf(chunks: readonly PlanChunk[], a: number, b: number): number {
  let sum = 0;
  for (let i = a; i < b; i++) sum += chunks[i]!.size;
  return sum;
}

/**
 * The content-defined test: a chunk of `size` bytes is a boundary when the
 * first four bytes of its hash, as a fraction of 2^32 (little-endian), fall
 * under size / spacing. Every chunk is one when spacing is 0.
 */
function boundary(chunk: PlanChunk, spacing: number): boolean {
  if (spacing <= 0) return true;
  const h = chunk.hash;
  const v = ((h[0] ?? 0) | ((h[1] ?? 0) << 8) | ((h[2] ?? 0) << 16) | ((h[3] ?? 0) << 24)) >>> 0;
  return v < (chunk.size / spacing) * 2 ** 32;
}
