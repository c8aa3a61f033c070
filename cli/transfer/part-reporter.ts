import { Codec } from "../../gen/drive/v1/types_pb.js";

/** The server's cap on reports per ReportParts call (proto: ReportPartsRequest.parts). */
export const MAX_REPORTS_PER_CALL = 1000;
/** The server's cap on stored_sizes among the reports of one call (proto: ReportPartsRequest.parts). */
export const MAX_STORED_SIZES_PER_CALL = 65_536;

/** One finished part, as ReportParts takes it. */
export interface PartReportEntry {
  partNumber: number;
  etag: string;
  /** Codec.NONE: raw, no storedSizes. Codec.ZSTD: one frame per chunk, storedSizes in chunk order. */
  codec: Codec;
  storedSizes: bigint[];
}

/**
 * Collects finished parts and reports them in batches: after `batchSize`
 * parts or `intervalMs`, whichever comes first, and once more at the end.
 * A batch whose report fails goes back to the queue for the next flush; the
 * flush the caller awaits (the last one, before CompleteUpload) rejects with
 * that failure instead of hiding it: on S3 an unreported part does not count,
 * and CompleteUpload would then refuse the upload for a report that was lost.
 */
/** 1 s unless DRIVE_REPORT_INTERVAL gives another number of seconds (README, "Configuration"). */
export function defaultReportIntervalMs(env: NodeJS.ProcessEnv = process.env): number {
  const seconds = Number(env.DRIVE_REPORT_INTERVAL);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 1000;
}

export class PartReporter {
  private pending: PartReportEntry[] = [];
  private timer: NodeJS.Timeout | null = null;
  // Flushes run one after another; each takes what is pending when its turn comes,
  // so a failed earlier batch, put back, goes out with the next one.
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    // Retried by the client's own policy (connectDrive) before it fails here.
    private readonly send: (parts: PartReportEntry[]) => Promise<void>,
    // Small and frequent enough that a killed push loses few reports: on S3,
    // an unreported part is sent again on resume (or vouched for, when raw).
    private readonly batchSize = 16,
    private readonly intervalMs = defaultReportIntervalMs(),
  ) {}

  /** A part sent raw, or vouched for (always raw), when only the ETag is given. */
  add(partNumber: number, etag: string, codec: Codec = Codec.NONE, storedSizes: readonly number[] = []): void {
    this.pending.push({ partNumber, etag, codec, storedSizes: codec === Codec.ZSTD ? storedSizes.map(BigInt) : [] });
    // A background flush that fails keeps its batch for the next one.
    if (this.pending.length >= this.batchSize) this.flush().catch(() => undefined);
    else if (!this.timer) {
      this.timer = setTimeout(() => this.flush().catch(() => undefined), this.intervalMs);
      this.timer.unref();
    }
  }

  /**
   * Sends what is pending once every earlier flush is done. Rejects when this
   * batch could not be reported; the parts stay queued.
   */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const run = this.flushing.then(async () => {
      // A backlog left by failed reports goes out in calls the server accepts.
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, sliceLength(this.pending));
        try {
          await this.send(batch);
        } catch (err) {
          this.pending.unshift(...batch);
          throw err;
        }
      }
    });
    this.flushing = run.catch(() => undefined);
    return run;
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** How many reports from the front make one call: at most 1,000, with at most 65,536 stored sizes among them, and at least one. */
function sliceLength(pending: readonly PartReportEntry[]): number {
  let sizes = 0;
  let n = 0;
  while (n < pending.length && n < MAX_REPORTS_PER_CALL) {
    sizes += pending[n]!.storedSizes.length;
    if (sizes > MAX_STORED_SIZES_PER_CALL && n > 0) break;
    n++;
  }
  return n;
}
