import { MiB, partSizeError, partSizeFor } from "../../shared/rules/part-rules.js";
import { invalid } from "../errors.js";

/** CreateUpload's part_size when the client leaves it 0. */
export const DEFAULT_PART_SIZE = 16 * MiB;

/**
 * The target size of an upload's client parts: the requested one (0 for
 * the default), grown to fit 10,000 parts by the rule both sides share.
 * InvalidArgument for a size outside 5 MiB..5 GiB.
 */
export function uploadPartSize(fileSize: number, requested: number): number {
  const target = requested === 0 ? DEFAULT_PART_SIZE : requested;
  const why = partSizeError(fileSize, target);
  if (why) throw invalid(`part_size: ${why} (0 means the server's default, 16 MiB)`);
  return partSizeFor(fileSize, target);
}
