import {
  AVG_CHUNK_SIZE,
  GEAR,
  GEAR_LS,
  GEAR_WINDOW,
  MASK_L,
  MASK_L_LS,
  MASK_S,
  MASK_S_LS,
  MAX_CHUNK_SIZE,
  MIN_CHUNK_SIZE,
} from "../../shared/rules/chunking.js";

/** Words can stand in for bytes only where a Uint32Array reads them little-endian. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * An incremental FastCDC cutter with the rules of shared/rules/chunking.ts.
 * Feed it a stream in slices of any size; it returns the cuts (absolute
 * stream offsets where a chunk ends) as it finds them, the same cuts
 * whatever the slicing. It keeps no bytes, only the hash and two offsets.
 */
export class FastCdc {
  /** Absolute offset of the next byte update() will see. */
  private pos = 0;
  /** Absolute offset where the current chunk starts (the last cut). */
  private start = 0;
  private hash = 0;

  /** Bytes seen so far. */
  get offset(): number {
    return this.pos;
  }

  /** Absolute offsets of the cuts that complete within `data`, in order. */
  update(data: Uint8Array): number[] {
    const cuts: number[] = [];
    const base = this.pos;
    const end = base + data.length;
    let q = base; // absolute offset of the next byte to look at
    while (q < end) {
      const warm = this.start + MIN_CHUNK_SIZE - GEAR_WINDOW; // first byte hashed
      const first = warm + GEAR_WINDOW - 1; // first byte tested: len == MIN
      const normal = this.start + AVG_CHUNK_SIZE - 1; // first byte tested with MASK_L
      const last = this.start + MAX_CHUNK_SIZE - 1; // a chunk ends here at the latest
      if (q < warm) {
        // Sub-minimum skip: nothing before `warm` can affect a test.
        q = Math.min(warm, end);
        this.hash = 0;
        continue;
      }
      if (q < first) {
        const stop = Math.min(first, end);
        let h = this.hash;
        for (let i = q - base; i < stop - base; i++) h = ((h << 1) + GEAR[data[i]!]!) | 0;
        this.hash = h;
        q = stop;
        continue;
      }
      let hit: number;
      if (q < normal) {
        const stop = Math.min(normal, end);
        hit = this.scan(data, q - base, stop - base, MASK_S, MASK_S_LS);
        if (hit < 0) {
          q = stop;
          continue;
        }
        hit += base;
      } else {
        const stop = Math.min(last, end);
        hit = stop > q ? this.scan(data, q - base, stop - base, MASK_L, MASK_L_LS) : -1;
        if (hit >= 0) hit += base;
        else if (stop === last && last < end) hit = last; // MAX_CHUNK_SIZE reached
        else {
          q = stop;
          continue;
        }
      }
      cuts.push(hit + 1);
      this.start = hit + 1;
      q = hit + 1;
    }
    this.pos = end;
    return cuts;
  }

  /** The cut that ends the stream, or null when no bytes follow the last cut (or none came at all). */
  finish(): number | null {
    if (this.pos === this.start) return null;
    this.start = this.pos;
    this.hash = 0;
    return this.pos;
  }

  /**
   * Rolls the hash over data[from, to), testing each byte against `mask`;
   * the index of the first byte that passes, or -1 (this.hash then holds
   * the hash after data[to - 1]). Two bytes per step, as in FastCDC 2020:
   * h << 2 plus GEAR_LS of the first byte is the first byte's hash shifted
   * left one, tested against the shifted mask, and adding GEAR of the second
   * gives the second byte's hash. Aligned stretches read four bytes a word,
   * two words a step.
   */
  private scan(data: Uint8Array, from: number, to: number, mask: number, maskLs: number): number {
    const G = GEAR;
    const GL = GEAR_LS;
    let h = this.hash;
    let i = from;
    const wordStart = LITTLE_ENDIAN ? Math.min(to, from + ((4 - ((data.byteOffset + from) & 3)) & 3)) : to;
    for (; i < wordStart; i++) {
      h = ((h << 1) + G[data[i]!]!) | 0;
      if ((h & mask) === 0) return i;
    }
    // Eight bytes (two words) a step; on a hit, h is the hash before them and the bytewise loop finds which byte.
    const pairs = (to - i) >> 3;
    if (pairs > 0) {
      const w32 = new Uint32Array(data.buffer, data.byteOffset + i, pairs * 2);
      let k = 0;
      for (; k < 2 * pairs; k += 2) {
        const w = w32[k]!;
        const v = w32[k + 1]!;
        let x = ((h << 2) + GL[w & 0xff]!) | 0;
        if ((x & maskLs) === 0) break;
        x = (x + G[(w >>> 8) & 0xff]!) | 0;
        if ((x & mask) === 0) break;
        x = ((x << 2) + GL[(w >>> 16) & 0xff]!) | 0;
        if ((x & maskLs) === 0) break;
        x = (x + G[w >>> 24]!) | 0;
        if ((x & mask) === 0) break;
        x = ((x << 2) + GL[v & 0xff]!) | 0;
        if ((x & maskLs) === 0) break;
        x = (x + G[(v >>> 8) & 0xff]!) | 0;
        if ((x & mask) === 0) break;
        x = ((x << 2) + GL[(v >>> 16) & 0xff]!) | 0;
        if ((x & maskLs) === 0) break;
        x = (x + G[v >>> 24]!) | 0;
        if ((x & mask) === 0) break;
        h = x;
      }
      i += 4 * k;
      if (k < 2 * pairs) to = i + 8;
    }
    for (; i < to; i++) {
      h = ((h << 1) + G[data[i]!]!) | 0;
      if ((h & mask) === 0) return i;
    }
    this.hash = h;
    return -1;
  }
}

/** The chunk sizes of a whole buffer, for tests and small inputs. */
export function chunkSizes(data: Uint8Array): number[] {
  const cdc = new FastCdc();
  const cuts = cdc.update(data);
  const end = cdc.finish();
  if (end !== null) cuts.push(end);
  return cuts.map((cut, i) => cut - (i ? cuts[i - 1]! : 0));
}
