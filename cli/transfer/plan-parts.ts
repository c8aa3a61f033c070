import { MiB, partSizeFor as sharedPartSizeFor } from "../../shared/rules/part-rules.js";
import { CliError } from "../errors.js";

/** Big enough to keep per-part round trips cheap, small enough that a resume loses little. */
export const DEFAULT_PART_SIZE = 16 * MiB;

/**
 * The part size for a file (shared/rules/part-rules.ts), with a bad request
 * as a usage error: the requested (or default) size, grown in whole MiB
 * when the file would otherwise need more than 10,000 parts.
 */
export function partSizeFor(fileSize: number, requested: number = DEFAULT_PART_SIZE): number {
  try {
    return sharedPartSizeFor(fileSize, requested);
  } catch (err) {
    throw new CliError("usage", (err as Error).message);
  }
}

/** Sizes of the parts of a file cut at `partSize`: all full but the last; none for an empty file. */
export function partSizes(fileSize: number, partSize: number): number[] {
  const sizes: number[] = [];
  for (let offset = 0; offset < fileSize; offset += partSize) sizes.push(Math.min(partSize, fileSize - offset));
  return sizes;
}
