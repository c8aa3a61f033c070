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
  /** A phase with its own progress, like hashing a file before a push. */
  | { type: "phase"; phase: "hash" | "transfer" | "verify" | "commit" }
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
