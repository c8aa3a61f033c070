import type { PresignedPart } from "../../gen/drive/v1/upload_pb.js";

/** Where to PUT one part: the URL, its headers, and the most bytes it takes (0: not given). */
export interface PartUrl {
  url: string;
  headers: Record<string, string>;
  maxSize: number;
}

/**
 * Presigned part URLs, fetched in batches ahead of need and refreshed when
 * they expire: one PresignParts call serves many parts, never one call per part.
 */
export class UrlBook {
  private readonly urls = new Map<number, PartUrl & { expiresAt: number }>();
  private inflight: Promise<void> | null = null;

  constructor(
    private readonly fetchBatch: (partNumbers: number[]) => Promise<{ urls: PresignedPart[]; expiresInSeconds: number }>,
    /** Parts still to send, in order: the next batch is taken from here. */
    private readonly upcoming: () => number[],
    private readonly batchSize: number,
    private readonly now: () => number = Date.now,
  ) {}

  add(urls: PresignedPart[], expiresInSeconds: number): void {
    // Refresh a little early: a URL must not expire between check and use.
    const expiresAt = this.now() + Math.max(1, expiresInSeconds - 15) * 1000;
    for (const u of urls) this.urls.set(u.partNumber, { url: u.url, headers: { ...u.headers }, maxSize: Number(u.maxSize), expiresAt });
  }

  /** Forget a URL the store refused, so the next get() fetches a fresh one. */
  invalidate(partNumber: number): void {
    this.urls.delete(partNumber);
  }

  async get(partNumber: number): Promise<PartUrl> {
    for (let asked = false; ; ) {
      const hit = this.urls.get(partNumber);
      if (hit && hit.expiresAt > this.now()) return hit;
      if (asked) throw new Error(`server returned no URL for part ${partNumber}`);
      if (!this.inflight) {
        // Ours first, then the parts that will be wanted next.
        const wanted = [partNumber, ...this.upcoming().filter((n) => n !== partNumber && !this.fresh(n))].slice(0, this.batchSize);
        asked = true;
        this.inflight = this.fetchBatch(wanted)
          .then((r) => this.add(r.urls, r.expiresInSeconds))
          .finally(() => (this.inflight = null));
      }
      await this.inflight; // a batch for other parts may not hold ours: then loop and ask
    }
  }

  private fresh(n: number): boolean {
    const hit = this.urls.get(n);
    return Boolean(hit && hit.expiresAt > this.now());
  }
}
