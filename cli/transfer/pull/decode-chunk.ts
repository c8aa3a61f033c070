import { createRequire } from "node:module";
import { Codec } from "../../../gen/drive/v1/types_pb.js";
import { CliError } from "../../errors.js";
import { PartHttpError } from "../part-http.js";
import type { RemoteChunk } from "./download-list.js";
import { checkZstdFrame } from "./zstd-frame.js";

/** The slice of `@mongodb-js/zstd` a pull uses. */
export interface ZstdDecoder {
  decompress(frame: Buffer): Promise<Buffer>;
}

let loaded: ZstdDecoder | null = null;

/**
 * Loaded on the first compressed chunk, not at start-up: most pulls of
 * random data never need it. Through require, as the push's codec loads
 * it (cli/transfer/compress/zstd.ts), typed by the slice above.
 */
export async function loadZstd(): Promise<ZstdDecoder> {
  if (loaded) return loaded;
  const m = createRequire(import.meta.url)("@mongodb-js/zstd") as { decompress?: unknown };
  if (typeof m.decompress !== "function") throw new Error("@mongodb-js/zstd has no decompress()");
  const decompress = m.decompress as ZstdDecoder["decompress"];
  return (loaded = { decompress: (frame) => decompress(frame) });
}

/**
 * A chunk's plaintext from its stored bytes. A zstd frame is checked
 * first (see checkZstdFrame) and must decode to exactly the chunk's size;
 * anything else is the store's lie, "untrusted", as wrong bytes are. The
 * caller still checks the plaintext's BLAKE3.
 */
export async function decodeChunk(chunk: RemoteChunk, stored: Buffer, zstd: () => Promise<ZstdDecoder> = loadZstd): Promise<Buffer> {
  if (chunk.codec === Codec.NONE) return stored;
  const why = checkZstdFrame(stored, chunk.size);
  if (why) throw new PartHttpError(`chunk ${chunk.index}: not a zstd frame of its ${chunk.size} bytes: ${why}`, "untrusted");
  let decoder: ZstdDecoder;
  try {
    decoder = await zstd();
  } catch (err) {
    throw new CliError("internal", `chunk ${chunk.index} is stored compressed, and the zstd decoder (@mongodb-js/zstd) could not be loaded: ${(err as Error).message}`);
  }
  let plain: Buffer;
  try {
    plain = await decoder.decompress(stored);
  } catch (err) {
    throw new PartHttpError(`chunk ${chunk.index}: its zstd frame does not decode (${(err as Error).message})`, "untrusted");
  }
  if (plain.length !== chunk.size) throw new PartHttpError(`chunk ${chunk.index}: its zstd frame decodes to ${plain.length} bytes, not ${chunk.size}`, "untrusted");
  return plain;
}
