import http from "node:http";
import https from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
import { Client, type ClientOptions } from "minio";
import { presignSignatureV4 } from "minio/dist/esm/signing.mjs";
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
import { DependencyUnavailableError, withStartupDeadline } from "../../startup-error.js";
import { BlobError } from "../errors.js";
import { s3Code, toBlobError } from "./s3-errors.js";

export interface S3StoreOptions {
  /** Where the server reaches the store: http(s)://host[:port]. */
  endpoint: string;
  /** Where clients reach it, when that differs (a container network, say); presigned URLs are signed for this host. */
  publicEndpoint?: string | null;
  bucket: string;
  accessKey: string;
  secretKey: string;
  region: string;
  /** bucket in the path (http://host/bucket/key) rather than the host name (http://bucket.host/key). */
  pathStyle: boolean;
  /** Ask the store to encrypt objects at rest with its own keys (SSE-S3). */
  sse: boolean;
  /** Tests only: an agent with its own DNS lookup, for virtual-host names. */
  agent?: http.Agent;
}

/** Exposes minio-js's ListParts, which it keeps protected, and presigning with signed headers, which it lacks. */
class S3Client extends Client {
  partsOf(bucket: string, key: string, uploadId: string) {
    return this.listParts(bucket, key, uploadId);
  }

  /** presignedUrl with `headers` signed too: the client must send them as they are. */
  async presignWithHeaders(method: string, bucket: string, key: string, expires: number, headers: Record<string, string>): Promise<string> {
    const region = await this.getBucketRegionAsync(bucket);
    const opts = this.getRequestOptions({ method, region, bucketName: bucket, objectName: key });
    opts.headers = { ...opts.headers, ...headers };
    return presignSignatureV4(opts, this.accessKey, this.secretKey, this.sessionToken, region, new Date(), expires);
  }
}

/**
 * node:http(s) as minio-js's transport, keeping a handle on every request in
 * flight: minio-js has no request timeout, so a start-up probe that runs out
 * of time cuts them here.
 */
class TrackedTransport {
  readonly #inFlight = new Set<http.ClientRequest>();
  constructor(private readonly base: typeof http | typeof https) {}
  request = (options: https.RequestOptions, callback?: (res: http.IncomingMessage) => void): http.ClientRequest => {
    const req = this.base.request(options, callback);
    this.#inFlight.add(req);
    req.once("close", () => this.#inFlight.delete(req));
    return req;
  };
  cancelAll(reason: Error): void {
    for (const req of this.#inFlight) req.destroy(reason);
  }
}

const SSE_HEADER = "x-amz-server-side-encryption";
const RETRY_DELAYS_MS = [100, 400, 1600];

/**
 * BlobStore on any S3-compatible store (AWS S3, MinIO, Ceph RGW) through
 * minio-js. The server only signs, lists and completes; clients move the
 * bytes with the presigned URLs. Part ETags are MD5 (or opaque), so a part
 * counts only when the client reported the ETag it got back.
 */
export class S3BlobStore implements BlobStore {
  readonly kind = "s3";
  readonly features: BlobFeatures = { partCopy: true, etagIsBlake3: false, putCreateOnly: false };
  private readonly client: S3Client;
  /** Signs URLs for the public endpoint; signing is local, it never connects. */
  private readonly signer: S3Client;
  private readonly bucket: string;
  private readonly transport: TrackedTransport;
  /** Set when a start-up probe ran out of time: its retries stop. */
  private probeCancelled = false;

  constructor(private readonly opts: S3StoreOptions) {
    this.bucket = opts.bucket;
    this.transport = new TrackedTransport(new URL(opts.endpoint).protocol === "https:" ? https : http);
    // minio-js only ever calls request(options, callback).
    this.client = new S3Client({ ...clientOptions(opts.endpoint, opts), transport: this.transport as unknown as Pick<typeof http, "request"> });
    this.signer = opts.publicEndpoint ? new S3Client(clientOptions(opts.publicEndpoint, opts)) : this.client;
  }

  /**
   * Creates the bucket when it is missing, and checks that the store applies
   * SSE-S3 when asked for it, so that a misconfiguration stops the server at
   * start rather than failing, or silently not encrypting, every upload.
   *
   * A store that accepts connections and never answers (a hung RGW, a full
   * Ceph OSD) would hang here for ever: the probe gets `timeoutMs`, then
   * fails with DependencyUnavailableError naming the endpoint and the step,
   * and so does a store that cannot be reached at all.
   */
  async open(opts: { timeoutMs?: number } = {}): Promise<void> {
    let step = "bucket check";
    const what = `the S3 store at ${this.opts.endpoint}`;
    try {
      await withStartupDeadline(
        what,
        opts.timeoutMs ?? 30_000,
        () => step,
        async () => {
          await this.checkBucket();
          step = "server-side encryption probe";
          if (this.opts.sse) await this.checkEncryption();
        },
        () => {
          this.probeCancelled = true;
          this.transport.cancelAll(new Error("start-up timeout"));
        },
      );
    } catch (err) {
      if (err instanceof BlobError && err.code === "retryable") {
        // A socket error (ECONNREFUSED, ENOTFOUND...) or a store that keeps answering "busy" (503, SlowDown).
        const unreachable = /^E[A-Z]+$/.test(s3Code(err.cause));
        throw new DependencyUnavailableError(`${what} ${unreachable ? "could not be reached" : "is unavailable"} (${err.message})`, { cause: err });
      }
      throw err;
    }
  }

  private async checkBucket(): Promise<void> {
    await this.call("bucket check", async () => {
      if (await this.client.bucketExists(this.bucket)) return;
      await this.client.makeBucket(this.bucket, this.opts.region).catch((err: unknown) => {
        // Another instance created it first.
        if (!["BucketAlreadyOwnedByYou", "BucketAlreadyExists"].includes(s3Code(err))) throw err;
      });
    });
  }

  /**
   * Writes a probe object with SSE-S3 and reads back whether the store says
   * it is encrypted. Some stores take the header and ignore it (Ceph RGW
   * before 17 does), and a setting that silently does nothing is worse than
   * a refusal to start.
   */
  private async checkEncryption(): Promise<void> {
    const key = `.drive/sse-probe-${process.pid}-${Date.now()}`;
    const refuse = (why: string, cause?: unknown) =>
      new BlobError("permanent", `--s3-sse AES256: ${why}; turn encryption on in the store, or run with --s3-sse none`, { cause });
    try {
      await this.client.putObject(this.bucket, key, Buffer.from("drive"), 5, { [SSE_HEADER]: "AES256" });
    } catch (err) {
      throw refuse(`the store refused server-side encryption (${toBlobError(err, "put").message})`, err);
    }
    try {
      const head = await this.call("stat", () => this.client.makeRequestAsync({ method: "HEAD", bucketName: this.bucket, objectName: key }));
      head.resume();
      if (head.headers[SSE_HEADER] !== "AES256") throw refuse("the store took the request but does not report the object as encrypted");
    } finally {
      await this.delete(key);
    }
  }

  createMultipart(key: string): Promise<string> {
    const headers = this.opts.sse ? { [SSE_HEADER]: "AES256" } : {};
    return this.call("create multipart upload", () => this.client.initiateNewMultipartUpload(this.bucket, key, headers));
  }

  async presignPart(req: PresignPartRequest): Promise<PresignedRequest> {
    // SigV4 query signing covers method, key, upload and part; S3 checks the size only at complete, and so does drive.
    const url = await this.call("presign part", () =>
      this.signer.presignedUrl("PUT", this.bucket, req.key, req.expiresInSeconds, {
        partNumber: String(req.partNumber),
        uploadId: req.uploadId,
      }),
    );
    return { url, headers: {} };
  }

  async presignPut(req: PresignPutRequest): Promise<PresignedRequest> {
    // An object PUT carries its own encryption header (a multipart upload has it from create), signed so the store takes it.
    const headers: Record<string, string> = this.opts.sse ? { [SSE_HEADER]: "AES256" } : {};
    const url = await this.call("presign put", () =>
      this.opts.sse
        ? this.signer.presignWithHeaders("PUT", this.bucket, req.key, req.expiresInSeconds, headers)
        : this.signer.presignedUrl("PUT", this.bucket, req.key, req.expiresInSeconds),
    );
    return { url, headers };
  }

  async copyPart(req: CopyPartRequest): Promise<StoredPart> {
    if (!(req.start >= 0 && req.end > req.start)) throw new BlobError("invalid", `bad copy range [${req.start}, ${req.end})`);
    // Not composeObject: it swallows part-copy errors.
    const res = await this.call("copy part", () =>
      this.client.uploadPart({
        bucketName: this.bucket,
        objectName: req.key,
        uploadID: req.uploadId,
        partNumber: req.partNumber,
        headers: {
          "x-amz-copy-source": `/${this.bucket}/${encodeKey(req.sourceKey)}`,
          "x-amz-copy-source-range": `bytes=${req.start}-${req.end - 1}`,
        },
      }),
    );
    // A copy can fail after a 200, with the error in the body and no ETag.
    if (!res.etag) throw new BlobError("retryable", `s3 copy part ${req.partNumber} of ${req.key}: the store returned no ETag`);
    return { partNumber: req.partNumber, size: req.end - req.start, etag: res.etag };
  }

  async listParts(key: string, uploadId: string): Promise<StoredPart[]> {
    const parts = await this.call("list parts", () => this.client.partsOf(this.bucket, key, uploadId));
    return parts
      .map((p) => ({ partNumber: p.part, size: Number(p.size), etag: p.etag }))
      .sort((a, b) => a.partNumber - b.partNumber);
  }

  async completeMultipart(key: string, uploadId: string, parts: ReadonlyArray<Pick<StoredPart, "partNumber" | "etag">>): Promise<void> {
    try {
      // Not retried here: after a failure the upload's state decides. The ETag it returns is ignored: RGW's is empty.
      await this.client.completeMultipartUpload(
        this.bucket,
        key,
        uploadId,
        parts.map((p) => ({ part: p.partNumber, etag: p.etag })),
      );
    } catch (err) {
      const blobErr = toBlobError(err, "complete multipart upload");
      if (blobErr.code === "invalid") throw blobErr;
      // A retry after a lost reply: the upload is gone (RGW says NoSuchKey, AWS NoSuchUpload,
      // and RGW 500s when it was aborted), so the object decides.
      if (await this.uploadGone(key, uploadId)) {
        if (await this.exists(key)) return;
        throw new BlobError("not_found", `s3 complete multipart upload: upload ${uploadId} of ${key} is gone and no object was made`, { cause: err });
      }
      throw blobErr;
    }
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.call("abort multipart upload", () => this.client.abortMultipartUpload(this.bucket, key, uploadId));
    } catch (err) {
      const blobErr = toBlobError(err, "abort multipart upload");
      if (blobErr.code !== "not_found") throw blobErr;
    }
  }

  async *listIncompleteUploads(prefix = ""): AsyncIterable<IncompleteUpload> {
    let keyMarker = "";
    let uploadIdMarker = "";
    for (;;) {
      // The query, not listIncompleteUploads: that one also lists every upload's parts to sum their sizes.
      const page = await this.call("list multipart uploads", () =>
        this.client.listIncompleteUploadsQuery(this.bucket, prefix, keyMarker, uploadIdMarker, ""),
      );
      for (const u of page.uploads) {
        if (u.key.startsWith(prefix)) yield { key: u.key, uploadId: u.uploadId, initiated: new Date(u.initiated) };
      }
      if (!page.isTruncated) return;
      if (page.nextKeyMarker === keyMarker && page.nextUploadIdMarker === uploadIdMarker) {
        throw new BlobError("permanent", "s3 list multipart uploads: the store returned the same page twice");
      }
      keyMarker = page.nextKeyMarker;
      uploadIdMarker = page.nextUploadIdMarker;
    }
  }

  async presignGet(req: PresignGetRequest): Promise<PresignedRequest> {
    const url = await this.call("presign get", () => this.signer.presignedUrl("GET", this.bucket, req.key, req.expiresInSeconds));
    return { url, headers: {} };
  }

  async stat(key: string): Promise<{ size: number }> {
    const stat = await this.call("stat", () => this.client.statObject(this.bucket, key));
    return { size: stat.size };
  }

  async delete(key: string): Promise<void> {
    try {
      await this.call("delete", () => this.client.removeObject(this.bucket, key));
    } catch (err) {
      const blobErr = toBlobError(err, "delete");
      if (blobErr.code !== "not_found") throw blobErr;
    }
  }

  private async uploadGone(key: string, uploadId: string): Promise<boolean> {
    try {
      await this.listParts(key, uploadId);
      return false;
    } catch (err) {
      if ((err as BlobError).code === "not_found") return true;
      throw err;
    }
  }

  private async exists(key: string): Promise<boolean> {
    try {
      await this.stat(key);
      return true;
    } catch (err) {
      if ((err as BlobError).code === "not_found") return false;
      throw err;
    }
  }

  /** Runs one store call, retrying briefly when the store is busy or the connection broke; callers retry longer. */
  private async call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const blobErr = toBlobError(err, op);
        if (blobErr.code !== "retryable" || attempt >= RETRY_DELAYS_MS.length + 1 || this.probeCancelled) throw blobErr;
        await sleep(RETRY_DELAYS_MS[attempt - 1]!);
      }
    }
  }
}

/** minio-js wants host, port and TLS apart; an endpoint with a path cannot be expressed. */
export function clientOptions(
  endpoint: string,
  opts: Pick<S3StoreOptions, "accessKey" | "secretKey" | "region" | "pathStyle" | "agent">,
): ClientOptions {
  const url = new URL(endpoint);
  if (url.pathname !== "/" || url.search) throw new Error(`S3 endpoint must be scheme://host[:port] with no path, not ${endpoint}`);
  const useSSL = url.protocol === "https:";
  if (!useSSL && url.protocol !== "http:") throw new Error(`S3 endpoint must be http or https, not ${endpoint}`);
  return {
    endPoint: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: url.port ? Number(url.port) : useSSL ? 443 : 80,
    useSSL,
    accessKey: opts.accessKey,
    secretKey: opts.secretKey,
    region: opts.region,
    pathStyle: opts.pathStyle,
    // Its retries replace the store's error code with "Retryable HTTP status" and warn on the console; S3BlobStore.call retries instead.
    retryOptions: { disableRetry: true },
    ...(opts.agent ? { transportAgent: opts.agent } : {}),
  };
}

/** The copy source is a path: escape each segment, keep the slashes. */
function encodeKey(key: string): string {
  return key.split("/").map(encodeURIComponent).join("/");
}
