/**
 * The object store's multipart rules, which every chunk list must obey.
 * Both sides apply them: the client plans with them, the server refuses a
 * plan that breaks them (S3 would refuse it only at complete, after the
 * bytes had moved).
 */
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** Every part except the last is at least this big (S3's EntityTooSmall). */
export const MIN_PART_SIZE = 5 * MiB;
/** No part is bigger. */
export const MAX_PART_SIZE = 5 * GiB;
/** An upload has at most this many parts. */
export const MAX_PARTS = 10_000;
/** The biggest file the rules allow: 10,000 parts of 5 GiB. */
export const MAX_FILE_SIZE = MAX_PARTS * MAX_PART_SIZE;

/** Why a list of part sizes breaks the rules, or null when it does not. */
export function checkPartSizes(sizes: readonly number[], total: number): string | null {
  if (!Number.isSafeInteger(total) || total < 0) return `size ${total} is not a valid byte count`;
  if (total > MAX_FILE_SIZE) return `size ${total} is over the ${MAX_FILE_SIZE}-byte maximum`;
  if (total === 0) return sizes.length === 0 ? null : "an empty file has no chunks";
  if (sizes.length === 0) return "a non-empty file needs chunks";
  if (sizes.length > MAX_PARTS) return `${sizes.length} chunks is over the ${MAX_PARTS}-part maximum`;
  let sum = 0;
  for (let i = 0; i < sizes.length; i++) {
    const size = sizes[i]!;
    const last = i === sizes.length - 1;
    if (!Number.isSafeInteger(size) || size <= 0) return `chunk ${i} has invalid size ${size}`;
    if (size > MAX_PART_SIZE) return `chunk ${i} is ${size} bytes, over the 5 GiB part maximum`;
    if (!last && size < MIN_PART_SIZE) return `chunk ${i} is ${size} bytes; only the last may be under 5 MiB`;
    sum += size;
  }
  if (sum !== total) return `chunk sizes add up to ${sum}, not ${total}`;
  return null;
}

/**
 * Why a requested part size cannot serve a file of `fileSize` bytes, or
 * null: the size must be 5 MiB to 5 GiB, the file at most MAX_FILE_SIZE.
 */
export function partSizeError(fileSize: number, requested: number): string | null {
  if (!Number.isSafeInteger(requested) || requested < MIN_PART_SIZE || requested > MAX_PART_SIZE) {
    return `part size must be between 5 MiB and 5 GiB, not ${requested} bytes`;
  }
  if (!Number.isSafeInteger(fileSize) || fileSize < 0) return `size ${fileSize} is not a valid byte count`;
  if (fileSize > MAX_FILE_SIZE) return `file is ${fileSize} bytes; the most an upload can hold is ${MAX_FILE_SIZE}`;
  return null;
}

/**
 * The part size for a file: `requested`, grown in whole MiB when the file
 * would otherwise need more than 10,000 parts of it. A 50 GB file fits at
 * 16 MiB; the biggest the rules allow is 10,000 × 5 GiB. Throws a plain
 * Error with partSizeError's reason; each side maps it to its own error.
 */
export function partSizeFor(fileSize: number, requested: number): number {
  const error = partSizeError(fileSize, requested);
  if (error) throw new Error(error);
  const needed = Math.ceil(Math.ceil(fileSize / MAX_PARTS) / MiB) * MiB;
  return Math.min(MAX_PART_SIZE, Math.max(requested, needed));
}
