/**
 * What a transfer tells the outside world. Transfers only emit these; the
 * accounting layer (cli/accounting/) aggregates them and the printers
 * (cli/ui/) render the aggregate. Nothing flows back.
 */
export type TransferEvent =
  | {
      type: "start";
      op: "push" | "pull";
      /** Remote path. */
      remote: string;
      /** Local path. */
      local: string;
      bytesTotal: number;
      partsTotal: number;
      /** Bytes and parts that need not move: already stored, or already on disk. */
      bytesSkipped: number;
      partsSkipped: number;
    }
  /**
   * A phase with its own progress, like hashing a file before a push.
   * bytesTotal (added for issue 9, optional): what a hash or verify phase
   * will read in all, when known, so it can show % and ETA before "start".
   */
  | { type: "phase"; phase: "hash" | "transfer" | "verify" | "commit"; bytesTotal?: number }
  | { type: "part_start"; partNumber: number; size: number }
  /** Bytes moved since the last progress event of this part. May be negative after a retry rewinds. */
  | { type: "progress"; partNumber: number; bytes: number }
  /**
   * size is the part's plaintext; wireBytes, when set, what crossed the wire
   * for it (less when it was stored compressed).
   */
  | { type: "part_done"; partNumber: number; size: number; wireBytes?: number }
  | { type: "part_retry"; partNumber: number; attempt: number; reason: string; delayMs: number }
  /** Bytes hashed while scanning (phase "hash") or verifying (phase "verify"). */
  | { type: "hashed"; bytes: number }
  | {
      type: "done";
      revision: number;
      contentHash: string;
      deduplicated: boolean;
      /** Push: plaintext bytes the server filled by copying what it already stored. */
      bytesCopied?: number;
      /** Pull: plaintext bytes taken from local files instead of the network. */
      bytesReused?: number;
      /** Bytes compression kept off the wire: plaintext sent minus what was sent. */
      bytesCompressionSaved?: number;
    };

export type TransferListener = (event: TransferEvent) => void;

/**
 * What a run of many files emits (cli/tree/, cli/watch/): each file's own
 * TransferEvents tagged with a key unique in the run, so that files can
 * overlap, plus events about the tree as a whole. A one-file command emits
 * its events tagged with file 0 (see tagFile). Accounting keys its state by
 * (file, part), never by part alone.
 */
export type RunEvent =
  | (TransferEvent & { file: number })
  /** Walking a tree: local (push) or remote (pull). Counts so far, not deltas. */
  | { type: "tree_scan"; side: "local" | "remote"; entries: number }
  /**
   * What the run will do, once planned; may come again as a watch plans more.
   * Counts are for this plan alone; accounting adds them up.
   */
  | { type: "tree_plan"; filesToSend: number; bytesToSend: number; filesUnchanged: number; bytesUnchanged: number; filesToDelete: number; foldersToMake: number }
  /** A file not transferred, and why; bytes are its size. "unchanged" counts as skipped in the summary, "filtered" does not count. */
  | { type: "file_skipped"; path: string; bytes: number; reason: "unchanged" | "collision" | "symlink" | "unsafe_name" | "changed_locally" | "unreadable" }
  /** A file or folder entry removed from the target by --delete or a watch. */
  | { type: "file_deleted"; path: string }
  /** A file's transfer that gave up; the run goes on with the others. */
  | { type: "file_failed"; file: number; path: string; message: string; code: string }
  /**
   * Two-way sync (cli/sync/): one operation of a plan, as planned (a dry
   * run) or as it ended. op and why are SyncOpType and OpWhy; to is set for
   * moves and conflicted copies.
   */
  | { type: "sync_op"; op: string; path: string; to?: string; why: string; outcome: "planned" | "done" | "skipped" | "failed"; message?: string }
  /** Two-way sync stopped by its guard before deleting anything: reason is SyncHalt's. */
  | { type: "sync_halt"; reason: string; message: string }
  /** Something the user should know, about one path or the run. */
  | { type: "warning"; message: string; path?: string };

export type RunListener = (event: RunEvent) => void;

/** The TransferListener for one file of a run: tags what it emits with the file's key. */
export function tagFile(emit: RunListener, file: number): TransferListener {
  return (event) => emit({ ...event, file });
}
