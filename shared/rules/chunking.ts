/**
 * Content-defined chunking rules, shared by client and server: the client
 * cuts with them (FastCDC, cli/transfer/fastcdc.ts), the server refuses a
 * chunk list that breaks the size rules. Every client must cut the same
 * bytes at the same places, or the same content stored by two clients (or
 * two versions of this one) no longer shares chunks: the gear table, the
 * masks and the cut rule below are part of the format, frozen like a wire
 * field. test/unit/fastcdc.test.ts pins known cut offsets so that a change
 * here cannot slip by.
 *
 * Why 256 KiB / 1 MiB / 4 MiB. Deduplicating backup tools sit at 1-4 MiB
 * averages: restic cuts 512 KiB / 1 MiB / 8 MiB (Rabin), kopia's default
 * splitter (DYNAMIC-4M-BUZHASH) averages 4 MiB, and Seafile's cdc.c cuts
 * exactly 256 KiB / 1 MiB / 4 MiB (Rabin). Smaller chunks find more reuse
 * (an edit dirties the chunk it lands in and maybe a neighbour) but each
 * chunk is one index row and 32 bytes of hash on the wire: 1 GiB is about
 * 1,000 chunks, 50 GB about 48,000 rows (six pages of MAX_CHUNKS_PER_PAGE).
 * The upload-delta goal (a 1 MiB edit of a 1 GiB file moves <= 3 %, about
 * 30 MiB) needs the changed chunks to be well under 30 MiB; at these sizes
 * a 1 MiB edit changes 2-3 chunks (the measured mean is about 1.15 MiB).
 * The minimum keeps tiny chunks (and rows) out; the maximum bounds what a
 * chunk costs to buffer, verify or compress, and stays under the 5 MiB S3
 * part minimum so that parts can always be built from whole chunks.
 */
export const KiB = 1024;
export const MIN_CHUNK_SIZE = 256 * KiB;
export const AVG_CHUNK_SIZE = 1024 * KiB;
export const MAX_CHUNK_SIZE = 4096 * KiB;

/** Chunks per page in CreateUpload, DeclareChunks and GetDownload (proto/drive/v1/upload.proto). */
export const MAX_CHUNKS_PER_PAGE = 8192;

/** The most chunks a file of `size` bytes can have under these rules. */
export function maxChunkCount(size: number): number {
  return size === 0 ? 0 : Math.floor(size / MIN_CHUNK_SIZE) + 1;
}

/**
 * Why chunk sizes break the rules, or null: every chunk but the last is
 * MIN_CHUNK_SIZE to MAX_CHUNK_SIZE, the last 1 to MAX_CHUNK_SIZE. `last`
 * says whether `sizes` ends the file (a page in the middle has no last).
 * `first` is the index of sizes[0], for messages.
 */
export function checkChunkSizes(sizes: readonly number[], last: boolean, first = 0): string | null {
  for (let i = 0; i < sizes.length; i++) {
    const size = sizes[i]!;
    const isLast = last && i === sizes.length - 1;
    if (!Number.isSafeInteger(size) || size <= 0) return `chunk ${first + i} has invalid size ${size}`;
    if (size > MAX_CHUNK_SIZE) return `chunk ${first + i} is ${size} bytes, over the ${MAX_CHUNK_SIZE}-byte chunk maximum`;
    if (!isLast && size < MIN_CHUNK_SIZE) return `chunk ${first + i} is ${size} bytes; only the last may be under ${MIN_CHUNK_SIZE}`;
  }
  return null;
}

/**
 * The gear hash: h = (h << 1) + GEAR[byte], mod 2^32. Each step shifts the
 * oldest byte's contribution up by one bit, so the hash after byte p depends
 * on bytes p-31..p alone (GEAR_WINDOW). The cutter never tests the hash
 * before a chunk has MIN_CHUNK_SIZE bytes, so it starts hashing
 * GEAR_WINDOW - 1 bytes before that point with h = 0 and skips the rest of
 * the first MIN_CHUNK_SIZE bytes (FastCDC's sub-minimum skip). Because of
 * the window, whether byte p is a cut candidate does not depend on where the
 * last cut was: candidates can be searched in parallel and picked in order.
 * 32 bits rather than FastCDC's 64 because JavaScript's integer arithmetic
 * is 32-bit; the window is shorter (31 bytes against about 48 for
 * fastcdc-rs's masks), which is still far longer than any mask needs.
 */
export const GEAR_WINDOW = 32;

/**
 * The 256 gear values: the high 32 bits of the first 256 outputs of
 * SplitMix64 seeded with 0x6472697665636463 ("drivecdc" in ASCII).
 * Generated once and frozen here (test/unit/fastcdc.test.ts regenerates
 * it and compares); a different table cuts different chunks.
 */
// prettier-ignore
export const GEAR: Int32Array = Int32Array.from([
  0x87072f8c, 0xa3a7577a, 0x7432912f, 0xeb561615, 0x18256961, 0x507acb56, 0xc51c096c, 0xcfd79492,
  0x64c586d0, 0x89505e2f, 0x54fb432b, 0x0ab332d4, 0x915d583b, 0xfafb142e, 0xf060a465, 0x8cf45a01,
  0xa3ea5985, 0xd47e3bbe, 0x6ff87730, 0xe754b11e, 0x4c03e068, 0xf0fbc6a5, 0x90ebe02a, 0xa113a540,
  0x228220d7, 0xc240fbc0, 0x3b65fc8f, 0xaafe7e11, 0x929b6497, 0x6792338f, 0x451e1958, 0xc83217df,
  0x6ce7fc02, 0xf9a90cd7, 0x291ff98f, 0x51ffe57d, 0xa48ff80d, 0x77b4103d, 0x578c6ba9, 0xed5f4777,
  0xcbeab7e0, 0x4ced7f7a, 0xd3d02cc5, 0x3df09c49, 0xd4e21fd7, 0xff2985c1, 0x62baf927, 0x3385cd36,
  0x78e6edb6, 0xb15565ec, 0xe2ab08dd, 0xf9f8d983, 0x58bb3946, 0x9c841353, 0x602bef3f, 0x1a375d04,
  0x71e798e7, 0x3715847c, 0x399d4574, 0xf4cc5f1f, 0x3635ad81, 0xdf0d42c3, 0x0992b8f4, 0x4344124d,
  0x09138559, 0xaa99d08c, 0x1a6dc203, 0x435d579d, 0xd6d20a87, 0x449bdb17, 0x83f82f14, 0x3878fa96,
  0xd544cf17, 0x2148aa25, 0x4da83c70, 0xed472831, 0xa272ff4c, 0x91c59d98, 0x9cca73b3, 0x97807e90,
  0xa63be93f, 0x4ae91c0b, 0x17fdab83, 0xe4726a87, 0xee6af292, 0xcd890eb3, 0x25caca66, 0xaca2d80c,
  0xec02152c, 0x9a6f9eaa, 0x9abee723, 0x08e05c21, 0xf4c60d5d, 0x282fe0b7, 0xfcd2a63e, 0x02fc261a,
  0x07cd0e44, 0xc73de531, 0xd227fdff, 0xf6894ba8, 0x918ea02a, 0xb79c8f70, 0x35f8a5a9, 0x268953ea,
  0x70630d3e, 0x9870b5aa, 0x80a2b1c4, 0xa855bb28, 0xefa89624, 0xc0c99be0, 0x0859a7da, 0xfe42fb35,
  0x4dc73948, 0xdc9316dd, 0x5ebb92c7, 0x6e21330c, 0x12d34a0e, 0x893a3fa3, 0x716cf21c, 0xb602dca9,
  0xec39ac9e, 0x20daa112, 0x770b3012, 0xc2c344cb, 0xf5a4f1ac, 0x74a0dbac, 0xbb2f719a, 0x2980fe4b,
  0x00050de2, 0xf08840bf, 0x96db1e33, 0xf2fc6e3f, 0xfc545117, 0xe4a87406, 0x5e466b2e, 0xfdfde759,
  0xa76dce66, 0xfa04a5bf, 0x8de3c3f5, 0xa70d9fd1, 0xb1083779, 0x6c375b88, 0xb4dab1b7, 0xadc12eb6,
  0x79b30185, 0xbc01ff08, 0x998f0703, 0xda720c28, 0xa5bb730c, 0x3b84ea2a, 0x07889da5, 0x8be24980,
  0x93f6d9f7, 0x04161d89, 0x51a3bb7d, 0x5c5f0f8f, 0xcc97fde4, 0xe88d7e98, 0xb3e9f9e5, 0x83028a0d,
  0x2aa1dc42, 0x8bfc6db6, 0xf23e4462, 0x32a89776, 0xd0369ba6, 0x579b3259, 0x28250cc5, 0x9285d954,
  0xc2283fc3, 0xf8318188, 0x528ae5b6, 0x25169ed4, 0x6c374347, 0x9a2ac2ab, 0xa5da7d62, 0xbd0366d2,
  0xbb0535af, 0x90b18173, 0x6d1988f2, 0x732a7a56, 0xa4e8737b, 0x9e1f405f, 0x66f2ca39, 0x4d5039ff,
  0x7cd46f60, 0xbe02908b, 0x8083aab4, 0x35ccab53, 0x2b514c91, 0x94347d5a, 0x1a681ca1, 0xdf227dc8,
  0x96daca27, 0x8a7e85d8, 0x958a869b, 0x4312f9a4, 0x6e338bf7, 0x2d024aae, 0x1e0bac3d, 0x92b3d5c1,
  0xe9ab6544, 0xd15d90b3, 0xda406b7d, 0x1a1e29ad, 0xd2fce488, 0xa1632d15, 0x11c36553, 0x60ed40ca,
  0x4ef32832, 0x6bef9bc5, 0x5faa996c, 0x85910e2f, 0x7116ab23, 0x43283314, 0x541e95ae, 0x49caa6ba,
  0xd1bc8004, 0xa0d178b2, 0x8ebb5917, 0x51f9528f, 0x8101ed65, 0xb19009a2, 0xf16d5c23, 0x889f9076,
  0x0dc14956, 0xe980b4d9, 0x5c163f5d, 0x64eef9b2, 0xf6358e2c, 0x0e7ed800, 0xc3785123, 0x347692dc,
  0x3b3c58cd, 0x8667d704, 0x09897f04, 0x394c0e12, 0xe541f2ee, 0xd70f851f, 0x8b760c62, 0xc8f0d7cf,
  0xa7894e68, 0x54c6c2cc, 0xb757c982, 0xfc3b72d7, 0xbbb89bad, 0x78ed0304, 0x80fb9fd8, 0xb84dba2f,
  0xd9dfcb51, 0x61c18a80, 0x2b4acfbd, 0x9b5de7a5, 0xb4772c7a, 0x23bf5695, 0x289c924e, 0xd272a105,
]);

/** GEAR shifted left one bit, for FastCDC 2020's "roll two bytes per step" (section 3.7 of the paper). */
export const GEAR_LS: Int32Array = GEAR.map((g) => g << 1);

/**
 * Normalized chunking, level 2 (FastCDC's NC2): a chunk of MIN to AVG bytes
 * ends at a byte whose hash has the MASK_S bits all zero (log2(AVG) + 2 =
 * 22 bits, so cuts are rarer than average), one of AVG to MAX bytes at a
 * byte whose hash has the MASK_L bits zero (20 - 2 = 18 bits, more
 * frequent), and a chunk that reaches MAX_CHUNK_SIZE ends there. Sizes then
 * cluster around the average instead of spreading exponentially.
 *
 * Exactly: the chunk that starts at offset c ends after the first byte q
 * whose length len = q - c + 1 is at least MIN_CHUNK_SIZE and
 *   len < AVG_CHUNK_SIZE and (H(q) & MASK_S) == 0, or
 *   len >= AVG_CHUNK_SIZE and (H(q) & MASK_L) == 0, or
 *   len == MAX_CHUNK_SIZE,
 * where H(q) is the gear hash of bytes q-31..q; the end of the stream ends
 * the last chunk, whatever its length.
 *
 * Which bits: FastCDC spreads its mask bits over a 64-bit hash because bit
 * k of a gear hash depends on the last k+1 bytes only, and low bits alone
 * would make the cut a function of the last 20 bytes. Here the bits sit at
 * the top of the usable 31 (bits 9-30 and 13-30), which makes every tested
 * bit depend on at least 10 bytes and the whole test on the full window.
 * Bit 31 is left out so that the roll-two trick can test the first byte of
 * each pair against the mask shifted left by one. MASK_L's bits are a subset
 * of MASK_S's, so a MASK_S candidate is also a MASK_L candidate.
 */
export const MASK_S = 0x7ffffe00;
export const MASK_L = 0x7fffe000;
/** The masks shifted left one bit, for the first byte of each rolled pair (as int32). */
export const MASK_S_LS = MASK_S << 1;
export const MASK_L_LS = MASK_L << 1;
