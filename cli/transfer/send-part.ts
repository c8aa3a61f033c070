import type { FileHandle } from "node:fs/promises";
import { Codec } from "../../gen/drive/v1/types_pb.js";
import { compressPart, storedBytes, type CompressedPart } from "./compress/compress-part.js";
import type { CompressPolicy } from "./compress/compress-policy.js";
import { sampleRatio } from "./compress/sample.js";
import type { TransferListener } from "./events.js";
import type { PartChunk } from "./part-chunks.js";
import { PartHttpError, putPart, putStored, type Agents, type EtagKind } from "./part-http.js";
import { sendWithRetry, type TransferOptions } from "./transfer-options.js";
import type { UrlBook } from "./url-book.js";

/** This upload is over for us: completed (maybe by another push sharing it), aborted or expired. */
export class UploadOver extends Error {}

/** Samples per part for the compression decision (compress-policy.ts). */
const PART_SAMPLES = 3;

/** What one push shares among its parts. */
export interface PartSender {
  opts: TransferOptions;
  file: string;
  /** The file, open for the samples and for building compressed parts. */
  fh: FileHandle;
  urls: UrlBook;
  agents: Agents;
  etags: EtagKind;
  policy: CompressPolicy;
  emit: TransferListener;
}

/** A sent part, as ReportParts wants it, and what crossed the wire for it. */
export interface SentPart {
  etag: string;
  codec: Codec;
  storedSizes: number[];
  wireBytes: number;
}

/**
 * Sends one client part: samples it, builds it compressed when the policy
 * says so and the result is allowed (compress-part.ts), else streams it raw
 * from the file; PUTs it with retries (a compressed part is built once;
 * a retry sends its frames again, remaking those past the memory bound). Emits part_start, progress and part_done with
 * the part's plaintext size and its wire bytes.
 */
export async function sendPart(s: PartSender, partNumber: number, chunks: readonly PartChunk[], last: boolean, signal: AbortSignal): Promise<SentPart> {
  const size = chunks.reduce((sum, c) => sum + c.size, 0);
  s.emit({ type: "part_start", partNumber, size });
  let built: CompressedPart | null = null;
  if (s.policy.mode !== "never" && chunks.length > 0) {
    const ops: Array<[number, number, number]> = [];
    const ratio = await sampleRatio(s.fh, chunks[0]!.offset, size, PART_SAMPLES, signal, (...op) => ops.push(op));
    // The samples time the compressor on this data, so a file in the middle band need not compress a part blind first.
    if (s.policy.worthTiming(ratio)) for (const op of ops) s.policy.compressor.add(...op);
    if (s.policy.decide(ratio).compress) {
      const started = performance.now();
      built = await compressPart(s.fh, s.file, chunks, { last, signal });
      // A part given up on stopped early: its time says nothing of the whole.
      if (built) s.policy.compressor.add(size, started, performance.now());
    }
  }
  const wireBytes = built ? built.storedSize : size;
  const etag = await sendWithRetry(s.opts, partNumber, s.emit, signal, async (onBytes) => {
    const target = await s.urls.get(partNumber);
    const started = performance.now();
    try {
      const common = { url: target.url, headers: target.headers, maxSize: target.maxSize, agents: s.agents, signal, onBytes, etags: s.etags };
      const etag = built
        ? await putStored({ ...common, size: built.storedSize, body: () => storedBytes(s.fh, s.file, built!, signal) })
        : await putPart({ ...common, file: s.file, chunks });
      s.policy.wire.add(wireBytes, started, performance.now());
      return etag;
    } catch (err) {
      if (err instanceof PartHttpError && err.kind === "expired") s.urls.invalidate(partNumber);
      // The store no longer has the upload (NoSuchUpload): someone completed or aborted it.
      if (err instanceof PartHttpError && err.status === 404) throw new UploadOver(`part ${partNumber}: ${err.message}`, { cause: err });
      throw err;
    }
  });
  s.emit({ type: "part_done", partNumber, size, wireBytes });
  return built
    ? { etag, codec: Codec.ZSTD, storedSizes: built.storedSizes, wireBytes }
    : { etag, codec: Codec.NONE, storedSizes: [], wireBytes };
}
