import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import path from "node:path";
import type { Readable } from "node:stream";
import type {
  BlobFeatures,
  BlobStore,
  CopyPartRequest,
  IncompleteUpload,
  PresignedRequest,
  PresignGetRequest,
  PresignPartRequest,
  PresignPutRequest,
  StoredPart,
} from "../blob-store.js";
import type { ChunkSink } from "../../../shared/io/buffer-turns.js";
import { MAX_PART_SIZE } from "../../../shared/rules/part-rules.js";
import { BlobError } from "../errors.js";
import { checkKey } from "./blob-key.js";
import { BlobUrls, type BlobUrlCheck, type ObjectGrant } from "./blob-urls.js";
import { DirSyncs } from "./dir-syncs.js";
import { mkdirDurable, PRIVATE_DIR_MODE, renameDirReplacing, syncDir, writeFileAtomic } from "./durable-fs.js";
import { ignoreMissing, isErrno, toBlobError } from "./fs-errors.js";
import { KeyedMutex } from "./keyed-mutex.js";
import { buildManifest, manifestPartPath, readManifest } from "./object-manifest.js";
import { readObjectRange, sendObjectRange } from "./read-object-range.js";
import { BodyLengthError, commitStagedPart, stagePart } from "./stage-part.js";
import { readMeta, type UploadMeta } from "./upload-meta.js";
import {
  checkPartNumber,
  isUploadId,
  MANIFEST_FILE,
  META_FILE,
  parsePartFileName,
  partFileName,
  StoreLayout,
} from "./store-layout.js";

export interface LocalBlobStoreOptions {
  /** Directory that holds everything; created on first use. */
  root: string;
  /** Key for the HMAC on presigned URLs; at least 32 bytes. */
  secret: Buffer;
}

const MAX_EXPIRY_SECONDS = 7 * 24 * 3600;

/** A part PUT as the route hands it over: `size` is its Content-Length, within the URL's grant. */
export interface ReceivedPart {
  key: string;
  uploadId: string;
  partNumber: number;
  size: number;
}

/** A committed object opened for reading by the GET route. */
export interface OpenedObject {
  readonly size: number;
  /** Bytes [start, end). */
  read(start: number, end: number): Readable;
  /** Writes [start, end) to a socket-like sink with reused buffers; the caller ends it. */
  send(out: ChunkSink, start: number, end: number): Promise<void>;
}

/**
 * A BlobStore on a local filesystem, serving its own presigned URLs through
 * createBlobRoutes. An upload is a directory of part files named by their
 * BLAKE3 hash; completing it writes a manifest and renames the directory into
 * place, so completion costs the same for 5 MiB as for 5 TiB. The layout is
 * in store-layout.ts.
 *
 * One process owns a root: the locks that keep completions, aborts and part
 * renames from interleaving are in memory.
 */
export class LocalBlobStore implements BlobStore {
  readonly kind = "local";
  readonly features: BlobFeatures = { partCopy: true, etagIsBlake3: true, putCreateOnly: true };

  readonly #layout: StoreLayout;
  readonly #urls: BlobUrls;
  readonly #locks = new KeyedMutex();
  readonly #dirSyncs = new DirSyncs();
  /** Directories known to exist durably, so an object PUT skips mkdir. */
  readonly #madeDirs = new Set<string>();
  #ready: Promise<void> | undefined;

  constructor(opts: LocalBlobStoreOptions) {
    this.#layout = new StoreLayout(path.resolve(opts.root));
    this.#urls = new BlobUrls(opts.secret);
  }

  async createMultipart(key: string): Promise<string> {
    checkKey(key);
    return this.#guard("create upload", async () => {
      const uploadId = randomBytes(16).toString("hex");
      // Build the upload in tmp/ and rename it in, so uploads/ never holds
      // one without its meta.json.
      const staging = this.#layout.tmpPath(`upload-${uploadId}`);
      await mkdir(staging, { mode: PRIVATE_DIR_MODE });
      const meta: UploadMeta = { key, initiated: new Date().toISOString() };
      await writeFileAtomic(path.join(staging, META_FILE), JSON.stringify(meta));
      await syncDir(staging);
      await rename(staging, this.#layout.uploadDir(uploadId));
      // Shared with the creates running alongside: one sync of uploads/ covers them all.
      await this.#dirSyncs.sync(this.#layout.uploadsDir);
      return uploadId;
    });
  }

  async presignPart(req: PresignPartRequest): Promise<PresignedRequest> {
    checkKey(req.key);
    checkPartNumber(req.partNumber);
    if (!isUploadId(req.uploadId)) throw new BlobError("invalid", "malformed upload id");
    if (!Number.isSafeInteger(req.maxSize) || req.maxSize < 0 || req.maxSize > MAX_PART_SIZE) {
      throw new BlobError("invalid", `part size must be 0..${MAX_PART_SIZE}, got ${req.maxSize}`);
    }
    const { key, uploadId, partNumber, maxSize } = req;
    const url = this.#urls.part(req.origin, { key, uploadId, partNumber, maxSize }, expiresAt(req.expiresInSeconds));
    return { url, headers: {} };
  }

  async presignPut(req: PresignPutRequest): Promise<PresignedRequest> {
    checkKey(req.key);
    if (!Number.isSafeInteger(req.size) || req.size < 0 || req.size > MAX_PART_SIZE) {
      throw new BlobError("invalid", `object size must be 0..${MAX_PART_SIZE}, got ${req.size}`);
    }
    return { url: this.#urls.objectPut(req.origin, { key: req.key, size: req.size }, expiresAt(req.expiresInSeconds)), headers: {} };
  }

  async presignGet(req: PresignGetRequest): Promise<PresignedRequest> {
    checkKey(req.key);
    return { url: this.#urls.object(req.origin, req.key, expiresAt(req.expiresInSeconds)), headers: {} };
  }

  async copyPart(req: CopyPartRequest): Promise<StoredPart> {
    checkKey(req.key);
    checkPartNumber(req.partNumber);
    const source = await this.openObject(req.sourceKey);
    const { start, end } = req;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end <= start || end > source.size) {
      throw new BlobError("invalid", `range [${start}, ${end}) is not inside ${req.sourceKey} (${source.size} bytes)`);
    }
    if (end - start > MAX_PART_SIZE) throw new BlobError("invalid", "a part can hold at most 5 GiB");
    const body = source.read(start, end);
    try {
      return await this.#storePart(req.key, req.uploadId, req.partNumber, end - start, body);
    } catch (err) {
      // Only if the source changed under us: its manifest promised more bytes.
      if (err instanceof BodyLengthError) throw new BlobError("permanent", `${req.sourceKey} changed during the copy`, { cause: err });
      throw err;
    } finally {
      body.destroy();
    }
  }

  async listParts(key: string, uploadId: string): Promise<StoredPart[]> {
    checkKey(key);
    return this.#guard("list parts", async () => {
      const dir = await this.#openUpload(key, uploadId);
      const latest = new Map<number, StoredPart & { mtimeMs: number }>();
      for (const name of await readdir(dir)) {
        const parsed = parsePartFileName(name);
        if (!parsed) continue;
        // A part replaced between readdir and stat is simply skipped.
        const st = await stat(path.join(dir, name)).catch(ignoreMissing);
        if (!st) continue;
        // Two files for one part only coexist for a moment during a re-upload;
        // the newer one is the one that will stay.
        const seen = latest.get(parsed.partNumber);
        if (!seen || st.mtimeMs > seen.mtimeMs) latest.set(parsed.partNumber, { ...parsed, size: st.size, mtimeMs: st.mtimeMs });
      }
      return [...latest.values()]
        .sort((a, b) => a.partNumber - b.partNumber)
        .map(({ partNumber, size, etag }) => ({ partNumber, size, etag }));
    });
  }

  async completeMultipart(
    key: string,
    uploadId: string,
    parts: ReadonlyArray<Pick<StoredPart, "partNumber" | "etag">>,
  ): Promise<void> {
    checkKey(key);
    if (parts.length === 0) throw new BlobError("invalid", "an upload needs at least one part");
    for (let i = 1; i < parts.length; i++) {
      if (parts[i]!.partNumber <= parts[i - 1]!.partNumber) {
        throw new BlobError("invalid", "parts must be listed in ascending part order");
      }
    }
    await this.#guard("complete upload", () =>
      this.#locks.run(`upload:${uploadId}`, async () => {
        let dir: string;
        try {
          dir = await this.#openUpload(key, uploadId);
        } catch (err) {
          // Already completed by an earlier call whose answer was lost.
          if (err instanceof BlobError && err.code === "not_found" && (await this.#objectExists(key))) return;
          throw err;
        }
        const manifest = await buildManifest(key, dir, parts);
        await writeFileAtomic(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest));
        const keep = new Set([META_FILE, MANIFEST_FILE, ...manifest.parts.map((p) => partFileName(p.partNumber, p.etag))]);
        for (const name of await readdir(dir)) {
          if (!keep.has(name)) await rm(path.join(dir, name), { recursive: true, force: true });
        }
        await syncDir(dir);
        const objectDir = this.#layout.objectDir(key);
        await this.#locks.run(`object:${key}`, async () => {
          await mkdirDurable(path.dirname(objectDir));
          await renameDirReplacing(dir, objectDir, this.#layout.tmpPath("replaced"));
        });
        await syncDir(this.#layout.uploadsDir);
      }),
    );
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    checkKey(key);
    if (!isUploadId(uploadId)) throw new BlobError("invalid", "malformed upload id");
    await this.#guard("abort upload", () =>
      this.#locks.run(`upload:${uploadId}`, async () => {
        const dir = this.#layout.uploadDir(uploadId);
        const meta = await readMeta(dir);
        // Gone, or another key's upload: either way there is nothing of ours.
        if (!meta || meta.key !== key) return;
        // Rename first so listings never see a half-deleted upload.
        const trash = this.#layout.tmpPath(`aborted-${uploadId}`);
        await rename(dir, trash);
        await rm(trash, { recursive: true, force: true, maxRetries: 3 });
      }),
    );
  }

  async *listIncompleteUploads(prefix = ""): AsyncIterable<IncompleteUpload> {
    const found = await this.#guard("list uploads", async () => {
      const uploads: IncompleteUpload[] = [];
      for (const uploadId of await readdir(this.#layout.uploadsDir)) {
        if (!isUploadId(uploadId)) continue;
        const meta = await readMeta(path.join(this.#layout.uploadsDir, uploadId));
        if (meta?.key.startsWith(prefix)) uploads.push({ key: meta.key, uploadId, initiated: new Date(meta.initiated) });
      }
      // S3's order: by key, then oldest first.
      return uploads.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : +a.initiated - +b.initiated));
    });
    yield* found;
  }

  async stat(key: string): Promise<{ size: number }> {
    const { size } = await this.openObject(key);
    return { size };
  }

  async delete(key: string): Promise<void> {
    const dir = this.#layout.objectDir(key);
    await this.#guard("delete object", () =>
      this.#locks.run(`object:${key}`, async () => {
        // Rename first so a reader never finds a manifest whose parts are gone.
        const trash = this.#layout.tmpPath("deleted");
        try {
          await rename(dir, trash);
        } catch (err) {
          if (isErrno(err, "ENOENT")) return;
          throw err;
        }
        await rm(trash, { recursive: true, force: true, maxRetries: 3 });
      }),
    );
  }

  // ---- For the HTTP routes (blob-routes.ts) ----

  /** Checks a request against its presigned URL, without touching the disk. */
  checkUrl(method: string | undefined, url: string | undefined): BlobUrlCheck {
    return this.#urls.check(method, url, Date.now() / 1000);
  }

  /**
   * Stores the body of a presigned part PUT, whose Content-Length the route
   * has checked against its grant. Throws BodyLengthError unless it carries
   * exactly part.size bytes, and not_found when the upload is gone.
   */
  async receivePart(part: ReceivedPart, body: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<StoredPart> {
    return this.#storePart(part.key, part.uploadId, part.partNumber, part.size, body, signal);
  }

  /**
   * Stores the body of a presigned object PUT as the whole object `key`: one
   * file, written and flushed in tmp/, then renamed into place, so readers
   * see the old object or the new one. The rename is made durable by a sync
   * of its directory shared with the PUTs landing alongside (DirSyncs): a
   * small file costs one fsync of its own. Throws BodyLengthError unless the
   * body is exactly grant.size bytes, and ObjectExistsError when `key` holds
   * an object already.
   */
  async receiveObject(grant: ObjectGrant, body: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<{ etag: string }> {
    checkKey(grant.key);
    return this.#guard("put object", async () => {
      const staged = await stagePart(this.#layout.tmpDir, 1, body, grant.size, signal);
      const dest = this.#layout.objectDir(grant.key);
      const parent = path.dirname(dest);
      try {
        if (!this.#madeDirs.has(parent)) {
          await mkdirDurable(parent);
          this.#madeDirs.add(parent);
        }
        await this.#locks.run(`object:${grant.key}`, async () => {
          // Create only: the lock makes the check and the rename one step.
          if (await stat(dest).catch(ignoreMissing)) throw new ObjectExistsError(grant.key);
          await rename(staged.tmpPath, dest);
        });
      } catch (err) {
        await rm(staged.tmpPath, { force: true });
        throw err;
      }
      await this.#dirSyncs.sync(parent);
      return { etag: staged.etag };
    });
  }

  /** Opens a committed object; not_found when there is none. */
  async openObject(key: string): Promise<OpenedObject> {
    const dir = this.#layout.objectDir(key);
    const files = await this.#guard(`object ${key}`, async () => {
      try {
        const manifest = await readManifest(dir);
        return manifest.parts.map((p) => ({ file: manifestPartPath(dir, p), size: p.size }));
      } catch (err) {
        // Not a directory: an object PUT whole is the one file.
        if (!isErrno(err, "ENOTDIR")) throw err;
        return [{ file: dir, size: (await stat(dir)).size }];
      }
    });
    const size = files.reduce((sum, f) => sum + f.size, 0);
    return {
      size,
      read: (start, end) => readObjectRange(files, start, end),
      send: (out, start, end) => sendObjectRange(files, start, end, out),
    };
  }

  // ---- Internals ----

  async #storePart(
    key: string,
    uploadId: string,
    partNumber: number,
    size: number,
    body: AsyncIterable<Uint8Array>,
    signal?: AbortSignal,
  ): Promise<StoredPart> {
    checkKey(key);
    return this.#guard(`part ${partNumber}`, async () => {
      const dir = await this.#openUpload(key, uploadId);
      const staged = await stagePart(dir, partNumber, body, size, signal);
      await this.#locks.run(`upload:${uploadId}`, () => commitStagedPart(dir, staged));
      return { partNumber, size, etag: staged.etag };
    });
  }

  /** The upload's directory; not_found when it is gone or belongs to another key, as in S3. */
  async #openUpload(key: string, uploadId: string): Promise<string> {
    await this.#init();
    const dir = this.#layout.uploadDir(uploadId);
    const meta = await readMeta(dir);
    if (!meta || meta.key !== key) throw new BlobError("not_found", "no such upload");
    return dir;
  }

  async #objectExists(key: string): Promise<boolean> {
    return (await stat(path.join(this.#layout.objectDir(key), MANIFEST_FILE)).catch(ignoreMissing)) !== undefined;
  }

  /** Runs fn once the root exists, turning filesystem errors into BlobErrors. */
  async #guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      await this.#init();
      return await fn();
    } catch (err) {
      // Not a store failure: the HTTP route answers it with a 4xx.
      if (err instanceof BodyLengthError || err instanceof ObjectExistsError) throw err;
      throw toBlobError(err, what);
    }
  }

  #init(): Promise<void> {
    this.#ready ??= (async () => {
      for (const dir of [this.#layout.uploadsDir, this.#layout.objectsDir, this.#layout.tmpDir]) {
        await mkdirDurable(dir);
      }
    })().catch((err: unknown) => {
      this.#ready = undefined; // let a later call try again
      throw err;
    });
    return this.#ready;
  }
}

/** An object PUT to a key that holds an object already (features.putCreateOnly). */
export class ObjectExistsError extends Error {
  override readonly name = "ObjectExistsError";
  constructor(key: string) {
    super(`${key} exists: an object PUT never replaces one`);
  }
}

/** Unix seconds, rounded up so a URL lives at least the lifetime asked for. */
function expiresAt(expiresInSeconds: number): number {
  if (!Number.isFinite(expiresInSeconds) || expiresInSeconds <= 0 || expiresInSeconds > MAX_EXPIRY_SECONDS) {
    throw new BlobError("invalid", `expiresInSeconds must be in (0, ${MAX_EXPIRY_SECONDS}]`);
  }
  return Math.ceil(Date.now() / 1000 + expiresInSeconds);
}
