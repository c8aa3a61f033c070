import type { BlobStore } from "../blob/blob-store.js";
import { BlobError } from "../blob/errors.js";
import { DriveError, uploadNotFound } from "../errors.js";
import type { Logger } from "../log.js";
import type { Db } from "../metadata/database.js";
import type { PlanPart } from "./upload-plan.js";

/** The store upload that copies go into. */
export interface CopyTarget {
  uploadId: string;
  objectKey: string;
  storeUploadId: string;
}

/** Copies in flight per upload: enough to keep a store busy, few enough to leave it room for the client's PUTs. */
const CONCURRENCY = 4;

/** SQLSTATE foreign_key_violation: the upload row went away (aborted, expired) under a copy. */
const FK_VIOLATION = "23503";

/**
 * Fills the parts of a plan that the server copies from objects the
 * namespace already stores (store.copyPart: UploadPartCopy on S3, a local
 * copy on the local store), and records each copy's ETag in upload_parts
 * with by_server set, which is what vouches for the part.
 *
 * Copies start in the background once a plan is made, so they overlap the
 * client's sends. Nothing relies on them having run: several instances may
 * serve one upload, and an instance may die mid-copy, so CompleteUpload
 * copies again whatever the store's listing lacks (copyNow). A copy is
 * idempotent: it replaces the part with the same bytes.
 *
 * The source blobs stay: blobs are never deleted, so a plan's copy source
 * cannot vanish under it. Deleting blobs later must keep every blob an open
 * upload's plan names (upload_plan.source_blob_id references it).
 */
export class PartCopies {
  readonly #running = new Map<string, Promise<void>>();
  #closed = false;

  constructor(private readonly deps: { db: Db; store: BlobStore; log: Logger }) {}

  /** Starts copying `parts` in the background, unless this instance already copies for the upload. */
  start(target: CopyTarget, parts: readonly PlanPart[]): void {
    const copies = parts.filter((p) => p.copy);
    if (this.#closed || !copies.length || this.#running.has(target.uploadId)) return;
    const run = this.#copyAll(target, copies, true)
      .catch((err: unknown) => {
        const gone = err instanceof DriveError && err.code === "not_found";
        this.deps.log[gone ? "info" : "warn"]("background part copy stopped; CompleteUpload copies what is missing", { upload_id: target.uploadId, err });
      })
      .finally(() => this.#running.delete(target.uploadId));
    this.#running.set(target.uploadId, run);
  }

  /** Waits for this instance's background copies of an upload; false when there were none. */
  async settle(uploadId: string): Promise<boolean> {
    const run = this.#running.get(uploadId);
    if (!run) return false;
    await run;
    return true;
  }

  /** Copies `parts` now, a few at a time; fails with the first copy that fails. */
  async copyNow(target: CopyTarget, parts: readonly PlanPart[]): Promise<void> {
    await this.#copyAll(target, parts, false);
  }

  /** Starts no more copies, and waits for the ones in flight. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#running.values()]);
  }

  async #copyAll(target: CopyTarget, parts: readonly PlanPart[], background: boolean): Promise<void> {
    const blobIds = [...new Set(parts.map((p) => p.copy!.blobId))];
    const sources = new Map(
      (await this.deps.db.selectFrom("blobs").select(["id", "object_key"]).where("id", "in", blobIds).execute()).map((b) => [b.id, b.object_key]),
    );
    let next = 0;
    let failed = false;
    const worker = async () => {
      while (next < parts.length && !failed && !(background && this.#closed)) {
        const part = parts[next++]!;
        try {
          await this.#copyOne(target, part, sources.get(part.copy!.blobId));
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, parts.length) }, worker));
  }

  async #copyOne(target: CopyTarget, part: PlanPart, sourceKey: string | null | undefined): Promise<void> {
    const { start, end } = part.copy!;
    if (!sourceKey) throw new Error(`copy part ${part.partNumber}: source blob ${part.copy!.blobId} has no object`);
    let etag: string;
    try {
      const stored = await this.deps.store.copyPart({ key: target.objectKey, uploadId: target.storeUploadId, partNumber: part.partNumber, sourceKey, start, end });
      if (stored.size !== end - start) throw new Error(`copy part ${part.partNumber}: the store copied ${stored.size} of ${end - start} bytes`);
      etag = stored.etag;
    } catch (err) {
      throw await this.#copyError(err, target, part.partNumber);
    }
    try {
      await this.deps.db
        .insertInto("upload_parts")
        .values({ upload_id: target.uploadId, part_number: part.partNumber, etag, codec: 1, stored_sizes: null, by_server: true })
        .onConflict((oc) =>
          oc.columns(["upload_id", "part_number"]).doUpdateSet({ etag, codec: 1, stored_sizes: null, by_server: true }),
        )
        .execute();
    } catch (err) {
      if ((err as { code?: unknown }).code === FK_VIOLATION) throw uploadNotFound();
      throw err;
    }
  }

  /**
   * A failed copy as the caller should see it: a busy store stays retryable
   * (Unavailable), an upload gone from the store is NotFound, and anything
   * else, a source object gone included, is the server's own fault
   * (Internal), never the client's.
   */
  async #copyError(err: unknown, target: CopyTarget, partNumber: number): Promise<unknown> {
    if (!(err instanceof BlobError) || err.code === "retryable") return err;
    if (err.code === "not_found") {
      const gone = await this.deps.store.listParts(target.objectKey, target.storeUploadId).then(
        () => false,
        (e: unknown) => e instanceof BlobError && e.code === "not_found",
      );
      if (gone) return uploadNotFound("gone from the store: expired or aborted");
    }
    return new Error(`copy part ${partNumber}: ${err.message}`, { cause: err });
  }
}

