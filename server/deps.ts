import type { BlobStore } from "./blob/blob-store.js";
import type { UploadLimits } from "./config/server-options.js";
import type { Logger } from "./log.js";
import type { Db } from "./metadata/database.js";
import type { JournalHub } from "./notify/journal-hub.js";
import type { PartCopies } from "./uploads/part-copies.js";

/** What the services share, built once in server/main.ts. */
export interface Deps {
  readonly db: Db;
  readonly store: BlobStore;
  readonly log: Logger;
  readonly settings: ServiceSettings;
  /** The parts the server copies itself, in the background and at complete. */
  readonly copies: PartCopies;
  /** Wakes WatchChanges streams when the journal grows, on any instance (server/notify/). */
  readonly hub: JournalHub;
}

export interface ServiceSettings {
  /** Lifetime of presigned URLs, in seconds. */
  readonly urlTtlSeconds: number;
  /** An upload that sees no call for this long expires and is swept. */
  readonly uploadTtlMs: number;
  /** Per-user caps on open uploads. */
  readonly limits: UploadLimits;
  /** Base for presigned URLs of stores the server serves itself; null: the URL each request came in on. */
  readonly publicUrl: string | null;
}
