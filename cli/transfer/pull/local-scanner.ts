import { chunkFile } from "../scan-file.js";
import type { ChunkScanner } from "./find-local-chunks.js";

/**
 * The chunker a pull cuts local files with: the push's own (FastCDC with
 * the shared rules, chunkFile), so that an unchanged stretch of a local
 * file yields the very chunks the remote version lists, wherever it sits.
 * A file that ends before its size (it shrank meanwhile) yields nothing.
 */
export function defaultScanner(): ChunkScanner {
  return async (fh, size, opts) => (await chunkFile(fh, size, opts))?.chunks ?? [];
}
