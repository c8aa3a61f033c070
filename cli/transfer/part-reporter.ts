import type { PartReport } from "../../gen/drive/v1/upload_pb.js";

/** The server's cap on reports per ReportParts call (proto: ReportPartsRequest.parts). */
export const MAX_REPORTS_PER_CALL = 1000;

/**
 * Collects finished parts and reports them in batches: after `batchSize`
 * parts or `intervalMs`, whichever comes first, and once more at the end.
 * A batch whose report fails goes back to the queue for the next flush; the
 * flush the caller awaits (the last one, before CompleteUpload) rejects with
 * that failure instead of hiding it: on S3 an unreported part does not count,
 * and CompleteUpload would then refuse the upload for a report that was lost.
 */
export class PartReporter {
  private pending: Array<Pick<PartReport, "partNumber" | "etag">> = [];
  private timer: NodeJS.Timeout | null = null;
  // Flushes run one after another; each takes what is pending when its turn comes,
  // so a failed earlier batch, put back, goes out with the next one.
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    // Retried by the client's own policy (connectDrive) before it fails here.
    private readonly send: (parts: Array<Pick<PartReport, "partNumber" | "etag">>) => Promise<void>,
    // Small and frequent enough that a killed push loses few reports: on S3,
    // an unreported part is sent again on resume.
    private readonly batchSize = 16,
    private readonly intervalMs = 1000,
  ) {}

  add(partNumber: number, etag: string): void {
    this.pending.push({ partNumber, etag });
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
        const batch = this.pending.splice(0, MAX_REPORTS_PER_CALL);
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
