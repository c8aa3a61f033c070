/** One chunk of a client part, where the file holds it. */
export interface PartChunk {
  /** Plaintext offset in the file. */
  offset: number;
  size: number;
  /** BLAKE3 of the chunk's plaintext, from the scan the upload declared. */
  hash: Uint8Array;
}

/** What a part of the plan is, as far as the client's file goes. */
export interface PartSpan {
  firstChunk: number;
  chunkCount: number;
}

/**
 * The chunks of a planned part, from the scan. Offsets come from the chunks
 * themselves: parts group whole content-defined chunks, so a part's start is
 * no multiple of anything.
 */
export function chunksOfPart(chunks: readonly PartChunk[], part: PartSpan): PartChunk[] {
  const slice = chunks.slice(part.firstChunk, part.firstChunk + part.chunkCount);
  if (slice.length !== part.chunkCount) {
    throw new Error(`the server planned chunks ${part.firstChunk}..${part.firstChunk + part.chunkCount - 1}, past the ${chunks.length} declared`);
  }
  return slice;
}
