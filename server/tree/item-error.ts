import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ItemErrorSchema } from "../../gen/drive/v1/tree_pb.js";
import { connectCodeOf, DriveError } from "../errors.js";

export type ItemErrorInit = MessageInitShape<typeof ItemErrorSchema>;

/**
 * One item's failure, as the status of a unary call would carry it: the
 * same Connect code, message and ErrorInfo (errors.proto). Anything but a
 * DriveError is no item's fault and fails the whole call, through the error
 * interceptor, so no internals leak into an item.
 */
export function itemError(err: unknown): ItemErrorInit {
  if (!(err instanceof DriveError)) throw err;
  return { code: connectCodeOf[err.code], message: err.message, ...(err.info ? { info: err.info } : {}) };
}

/** Runs `fn`, turning a DriveError into the item's error. */
export function asItem<T>(fn: () => T): T | DriveError {
  try {
    return fn();
  } catch (err) {
    if (err instanceof DriveError) return err;
    throw err;
  }
}
