import type { PartReport } from "../../gen/drive/v1/upload_pb.js";

/**
 * Collects finished parts and reports them in batches: after `batchSize`
 * parts or `intervalMs`, whichever comes first, and once more at the end.
 * Reports are advisory (the server checks the store at complete), so a
 * failed report is kept for the next flush rather than failing the upload.
 */
export class PartReporter {
  private pending: Array<Pick<PartReport, "partNumber" | "etag">> = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly send: (parts: Array<Pick<PartReport, "partNumber" | "etag">>) => Promise<void>,
    // Small and frequent enough that a killed push loses few reports: on S3,
    // an unreported part is sent again on resume.
    private readonly batchSize = 16,
    private readonly intervalMs = 1000,
  ) {}

  add(partNumber: number, etag: string): void {
    this.pending.push({ partNumber, etag });
    if (this.pending.length >= this.batchSize) void this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.intervalMs);
      this.timer.unref();
    }
  }

  /** Sends what is pending; resolves when every earlier flush is done too. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.pending;
    this.pending = [];
    this.flushing = this.flushing.then(async () => {
      if (batch.length === 0) return;
      try {
        await this.send(batch);
      } catch {
        this.pending.unshift(...batch);
      }
    });
    return this.flushing;
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
