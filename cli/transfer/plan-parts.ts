import { MAX_FILE_SIZE, MAX_PART_SIZE, MAX_PARTS, MiB, MIN_PART_SIZE } from "../../shared/rules/part-rules.js";
import { CliError } from "../errors.js";

/** Big enough to keep per-part round trips cheap, small enough that a resume loses little. */
export const DEFAULT_PART_SIZE = 16 * MiB;

/**
 * The part size for a file: the requested (or default) size, grown in whole
 * MiB when the file would otherwise need more than 10,000 parts. A 50 GB file
 * fits at the default; the biggest the rules allow is 10,000 × 5 GiB.
 */
export function partSizeFor(fileSize: number, requested: number = DEFAULT_PART_SIZE): number {
  if (requested < MIN_PART_SIZE || requested > MAX_PART_SIZE) {
    throw new CliError("usage", `part size must be between 5 MiB and 5 GiB, not ${requested} bytes`);
  }
  if (fileSize > MAX_FILE_SIZE) throw new CliError("usage", `file is ${fileSize} bytes; the most an upload can hold is ${MAX_FILE_SIZE}`);
  const needed = Math.ceil(Math.ceil(fileSize / MAX_PARTS) / MiB) * MiB;
  return Math.min(MAX_PART_SIZE, Math.max(requested, needed));
}

/** Sizes of the parts of a file cut at `partSize`: all full but the last; none for an empty file. */
export function partSizes(fileSize: number, partSize: number): number[] {
  const sizes: number[] = [];
  for (let offset = 0; offset < fileSize; offset += partSize) sizes.push(Math.min(partSize, fileSize - offset));
  return sizes;
}
