import { MiB } from "../../../shared/rules/part-rules.js";
import { Throughput } from "./throughput.js";

/** --compress: auto decides per part (below); always and never are for measuring and for links whose cost the rates cannot see. */
export type CompressMode = "auto" | "always" | "never";
export const COMPRESS_MODES: readonly CompressMode[] = ["auto", "always", "never"];

/** A sample must save at least this much for a part to be compressed at all. */
export const MIN_SAVING = 0.1;
/** A sample that saves this much compresses its part whatever the rates: the store keeps the bytes too. */
export const BIG_SAVING = 0.5;
/**
 * Stored bytes the smallest compressed client part should hold. The
 * server's plan groups the client's chunks into parts of part_size / 4 up
 * to 4 × part_size, part_size on average (shared/rules/part-plan.ts), so
 * asking for part_size = 4 × this / r keeps even the smallest part 20 %
 * above S3's 5 MiB minimum at the file's ratio r, and the average part
 * at ~24 MiB stored.
 */
export const MIN_STORED_PART = 6 * MiB;
/**
 * The plaintext part size asked for grows no further: a resume loses at
 * most a part, and parts of data that compresses beyond 1:40 may store
 * under 5 MiB and go raw. Memory does not grow with it: a part keeps at
 * most MAX_BUFFERED_PART of frames (compress-part.ts).
 */
export const MAX_COMPRESSED_PART_SIZE = 1024 * MiB;

export interface Decision {
  compress: boolean;
  /** Why, for --json debugging and tests. */
  why: "never" | "always" | "saves-little" | "saves-half" | "faster" | "slower" | "no-rates";
}

/**
 * When a client part is worth compressing, decided per part from that
 * part's own sample (never its file name):
 *
 * 1. A sample (3 × 64 KiB spread over the part, zstd level 1) gives the
 *    ratio r = stored / plaintext. Saving under 10 % (1 - r < 0.1): raw.
 *    Random and already-compressed data stop here, so they cost one small
 *    sample per part and nothing else.
 * 2. Saving 50 % or more: compress. Stored bytes cost too, and at that
 *    ratio the wire time nearly halves.
 * 3. In between, compress only when it is faster. Parts go out `lanes` at a
 *    time, so the push is a pipeline whose slowest stage sets its pace:
 *    raw, a part of P bytes costs P / W of wire time (W: the wire's rate,
 *    bytes/s over recent PUTs, all lanes together); compressed it costs
 *    max(P / C, r·P / W), compressing one part while others send (C: the
 *    compressor's rate over recent parts). Compression wins when that is
 *    smaller. The compressor's rate comes from the samples of such parts
 *    (and from the parts compressed); until a PUT has been measured too, a
 *    part in this band goes raw, as drive sent everything before
 *    compression existed.
 *
 * The rates are estimates: PUT time includes the store's own latency (an
 * fsync per part on the local store), and a compressor that is the
 * bottleneck leaves lanes idle, which lowers W. Both err towards
 * compressing; the 50 % band, which decides the common cases (logs, text,
 * random data), does not depend on them.
 */
export class CompressPolicy {
  /** Stored bytes per second of recent part PUTs. */
  readonly wire = new Throughput();
  /** Plaintext bytes per second of recent part compressions. */
  readonly compressor = new Throughput();

  constructor(readonly mode: CompressMode = "auto") {}

  decide(ratio: number): Decision {
    if (this.mode === "never") return { compress: false, why: "never" };
    if (this.mode === "always") return { compress: ratio < 1, why: "always" };
    const saving = 1 - ratio;
    if (!(saving >= MIN_SAVING)) return { compress: false, why: "saves-little" };
    if (saving >= BIG_SAVING) return { compress: true, why: "saves-half" };
    const w = this.wire.rate();
    const c = this.compressor.rate();
    if (w === null || c === null) return { compress: false, why: "no-rates" };
    const raw = 1 / w;
    const compressed = Math.max(1 / c, ratio / w);
    return compressed < raw ? { compress: true, why: "faster" } : { compress: false, why: "slower" };
  }

  /**
   * Whether a sample's compression times speak for the data compression
   * would be asked to do: only samples that save enough to be considered.
   * Random data compresses several times faster and would flatter the rate.
   */
  worthTiming(ratio: number): boolean {
    return 1 - ratio >= MIN_SAVING;
  }

  /**
   * The part size to ask CreateUpload for, from a sample of the whole file:
   * 4 × MIN_STORED_PART / r, within [fallback, 1 GiB], in whole MiB, so that
   * compressed parts stay above the 5 MiB minimum; `fallback` (the default
   * 16 MiB) when the file does not look compressible. A --part-size the
   * user gave is taken as it is, before this is asked.
   */
  partSizeFor(fileRatio: number, fallback: number): number {
    if (this.mode === "never" || !(1 - fileRatio >= MIN_SAVING)) return fallback;
    const wanted = Math.ceil((4 * MIN_STORED_PART) / Math.max(fileRatio, 1e-6) / MiB) * MiB;
    return Math.min(MAX_COMPRESSED_PART_SIZE, Math.max(fallback, wanted));
  }
}
