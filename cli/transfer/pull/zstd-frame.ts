/**
 * Checks a stored chunk's zstd frame (RFC 8878) before a byte of it is
 * decoded. The decoder drive loads (`@mongodb-js/zstd`, libzstd's streaming
 * decoder) grows its output until the input ends and reads frame after
 * frame: a lying store could send a few MB of RLE blocks that decode to
 * terabytes. Walking the block headers bounds what the frame can decode to
 * without decoding it, so only a frame that cannot grow past its chunk is
 * handed over, and what comes out must then be exactly the chunk.
 */

const MAGIC = 0xfd2fb528;
/** The largest block the format allows; libzstd cuts full blocks of this size. */
export const BLOCK_MAX = 128 * 1024;

/**
 * Why `frame` is not one zstd frame that decodes to `size` bytes, or null.
 * Refused: anything but exactly one frame (no skippable frames, nothing
 * after it), dictionaries, a declared content size other than `size`,
 * reserved bits or block types, and blocks that could decode to more than
 * 8 × size + 128 KiB in all: what a lying store can make the decoder
 * allocate, 32 MiB for a 4 MiB chunk, before the size check refuses it.
 * libzstd cuts full 128 KiB blocks (bound about size + 128 KiB); only its
 * block splitter, at levels 16 and up, cuts smaller ones (about 2 × size
 * measured on log text), well inside the bound.
 */
export function checkZstdFrame(frame: Uint8Array, size: number): string | null {
  const b = frame;
  if (b.length < 6) return "too short for a zstd frame";
  const le32 = (at: number) => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16)) + b[at + 3]! * 2 ** 24;
  if (le32(0) !== MAGIC) return "no zstd magic number";
  const fhd = b[4]!;
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd >> 5) & 1;
  if ((fhd >> 3) & 1) return "reserved bit set in the frame header";
  const checksum = (fhd >> 2) & 1;
  if (fhd & 3) return "the frame needs a dictionary";
  let at = 5;
  let window = 0;
  if (!singleSegment) {
    const wd = b[at++]!;
    const base = 2 ** (10 + (wd >> 3));
    window = base + (base / 8) * (wd & 7);
  }
  const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag]!;
  if (at + fcsBytes > b.length) return "truncated frame header";
  if (fcsBytes > 0) {
    let fcs = 0;
    for (let i = fcsBytes - 1; i >= 0; i--) fcs = fcs * 256 + b[at + i]!;
    if (fcsBytes === 2) fcs += 256;
    at += fcsBytes;
    if (fcs !== size) return `the frame declares ${fcs} bytes, not the chunk's ${size}`;
    if (singleSegment) window = fcs;
  }
  const blockMax = Math.min(BLOCK_MAX, Math.max(window, 1));
  const limit = 8 * size + BLOCK_MAX;
  let bound = 0;
  for (;;) {
    if (at + 3 > b.length) return "truncated block header";
    const header = b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16);
    at += 3;
    const last = header & 1;
    const type = (header >> 1) & 3;
    const blockSize = header >>> 3;
    if (type === 3) return "reserved block type";
    if (blockSize > blockMax) return `a ${blockSize}-byte block, over the ${blockMax}-byte maximum`;
    // Raw and RLE blocks say what they decode to; a compressed one decodes to at most a block.
    bound += type === 2 ? blockMax : blockSize;
    if (bound > limit) return `its blocks could decode to more than ${limit} bytes`;
    at += type === 1 ? 1 : blockSize;
    if (at > b.length) return "truncated block";
    if (last) break;
  }
  if (bound < size) return `its blocks decode to at most ${bound} bytes, short of the chunk's ${size}`;
  at += checksum ? 4 : 0;
  if (at !== b.length) return at > b.length ? "truncated checksum" : `${b.length - at} bytes after the frame`;
  return null;
}
