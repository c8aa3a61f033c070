import { Code, ConnectError } from "@connectrpc/connect";
import type { ItemError } from "../../gen/drive/v1/tree_pb.js";
import { ErrorInfoSchema, ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import { toCliError } from "../errors.js";
import { tagFile, type RunListener, type TransferListener } from "../transfer/events.js";
import type { TreeResult } from "./types.js";

/** What one run of a tree counts and says, shared by push, pull and apply. */
export class TreeRun {
  readonly result: TreeResult = { filesSent: 0, bytesSent: 0, filesSkipped: 0, bytesSkipped: 0, filesDeleted: 0, filesFailed: 0, foldersMade: 0, unsettled: [], cursor: "" };
  private nextKey = 0;

  constructor(readonly emit: RunListener) {}

  /** A fresh file key and the listener tagged with it. */
  file(): { key: number; emit: TransferListener } {
    const key = this.nextKey++;
    return { key, emit: tagFile(this.emit, key) };
  }

  skipped(path: string, bytes: number, reason: "unchanged" | "collision" | "symlink" | "unsafe_name" | "changed_locally" | "unreadable"): void {
    this.result.filesSkipped++;
    this.result.bytesSkipped += bytes;
    this.emit({ type: "file_skipped", path, bytes, reason });
  }

  /** A file that failed alone; key -1 for one that never started (a folder entry, a delete): it gets a key of its own. */
  failed(key: number, path: string, err: unknown): void {
    if (key < 0) key = this.nextKey++;
    const e = toCliError(err);
    this.result.filesFailed++;
    this.emit({ type: "file_failed", file: key, path, message: e.message, code: e.kind });
  }

  deleted(path: string): void {
    this.result.filesDeleted++;
    this.emit({ type: "file_deleted", path });
  }

  warn(message: string, path?: string): void {
    this.emit({ type: "warning", message, ...(path !== undefined ? { path } : {}) });
  }
}

/** A batch item's error as the error a unary call would have thrown, so that toCliError maps it the same way. */
export function itemError(e: ItemError | undefined, path: string): ConnectError {
  const code = (e?.code || Code.Unknown) as Code;
  const details = e?.info && e.info.reason !== ErrorReason.UNSPECIFIED ? [{ desc: ErrorInfoSchema, value: e.info }] : [];
  return new ConnectError(`${path}: ${e?.message || Code[code]}`, code, undefined, details);
}

/** Splits items into groups of at most n. */
export function batches<T>(items: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n));
  return out;
}

/** An abort of the run, as opposed to one file's failure. */
export function isAbort(err: unknown, signal: AbortSignal): boolean {
  return signal.aborted || (err as Error)?.name === "AbortError";
}
