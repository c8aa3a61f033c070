/**
 * BlobStore is the seam between drive and the bytes. The server only ever
 * signs, lists, completes and deletes: clients move the bytes themselves with
 * the presigned requests it hands out.
 *
 * Keys are opaque strings made of [A-Za-z0-9/._-]; the server chooses them.
 * Part numbers are 1-based, as in S3. Every method fails with a BlobError
 * (see errors.ts) whose code says whether a retry can help.
 *
 * Implementations must pass test/blob/conformance.ts.
 */
export interface BlobStore {
  /** Short name for logs: "local", "s3". */
  readonly kind: string;
  readonly features: BlobFeatures;

  /** Starts a multipart upload that will become `key`. Returns the store's upload id. */
  createMultipart(key: string): Promise<string>;

  /**
   * Presigns a PUT of part `partNumber` carrying at most `maxSize` bytes (a
   * part stored compressed is shorter than its plaintext). The request works
   * until it expires, and only for that upload, part and method. Stores that
   * sign the length refuse a longer body; S3 does not sign it, and the
   * server's check of the listing at complete refuses the part instead.
   */
  presignPart(req: PresignPartRequest): Promise<PresignedRequest>;

  /**
   * Copies bytes [start, end) of the committed object `sourceKey` into a part,
   * server side. Only when features.partCopy; otherwise a permanent error.
   */
  copyPart(req: CopyPartRequest): Promise<StoredPart>;

  /**
   * Lists the parts the store holds for an upload, in part order. A part
   * whose PUT was cut short is never listed. NotFound when the upload is gone.
   */
  listParts(key: string, uploadId: string): Promise<StoredPart[]>;

  /**
   * Assembles the parts into `key`. Idempotent: when the upload is already
   * gone and `key` exists, it succeeds. Never rely on an ETag from it: Ceph
   * RGW returns an empty one.
   */
  completeMultipart(key: string, uploadId: string, parts: ReadonlyArray<Pick<StoredPart, "partNumber" | "etag">>): Promise<void>;

  /** Discards an upload and its parts. Succeeds when it is already gone. */
  abortMultipart(key: string, uploadId: string): Promise<void>;

  /** Uploads that were created and neither completed nor aborted. */
  listIncompleteUploads(prefix?: string): AsyncIterable<IncompleteUpload>;

  /**
   * Presigns a PUT of the whole object `key` in one request, for small files
   * (TreeService.BeginPuts): the object exists once the PUT is answered, with
   * no multipart session. When features.putCreateOnly, a PUT to a key that
   * holds an object is refused (412) and changes nothing, so a URL still
   * live after its object was committed cannot overwrite it; otherwise (S3)
   * a PUT again replaces it, until the URL expires. Stores that sign the
   * length refuse a body of any other length than `size`; S3 does not sign
   * it, and the server's stat of the object refuses a wrong size instead.
   */
  presignPut(req: PresignPutRequest): Promise<PresignedRequest>;

  /** Presigns a GET of a committed object that honours `Range`. */
  presignGet(req: PresignGetRequest): Promise<PresignedRequest>;

  /** Size of a committed object. NotFound when there is none. */
  stat(key: string): Promise<{ size: number }>;

  /** Deletes a committed object. Succeeds when it is already gone. */
  delete(key: string): Promise<void>;
}

/** Optional abilities, declared rather than sniffed (rclone's Features). */
export interface BlobFeatures {
  /** copyPart works: the server can fill parts from objects it already has. */
  readonly partCopy: boolean;
  /**
   * A part's ETag is the BLAKE3 hex of its stored bytes. The server no longer
   * confirms a part from it (a part holds many chunks, maybe compressed, so
   * no chunk hash predicts it): every part the client sends counts only once
   * the client reports its ETag. The client uses it to check what it sent.
   * S3's ETags are MD5 (or opaque).
   */
  readonly etagIsBlake3: boolean;
  /** presignPut's PUT never replaces an existing object: it answers 412 instead. */
  readonly putCreateOnly: boolean;
}

export interface PresignOptions {
  /** Lifetime of the signature, in seconds. */
  expiresInSeconds: number;
  /**
   * Scheme, host and port the caller reached the server on, such as
   * "http://127.0.0.1:7070". Stores that serve their own URLs build them on
   * it; S3 ignores it.
   */
  origin: string;
}

export interface PresignPartRequest extends PresignOptions {
  key: string;
  uploadId: string;
  partNumber: number;
  /** The most bytes the PUT may carry; any length up to it is a valid part. */
  maxSize: number;
}

export interface PresignPutRequest extends PresignOptions {
  key: string;
  /** The exact byte count the PUT carries. */
  size: number;
}

export interface PresignGetRequest extends PresignOptions {
  key: string;
}

export interface CopyPartRequest {
  key: string;
  uploadId: string;
  partNumber: number;
  sourceKey: string;
  /** Inclusive start, exclusive end. */
  start: number;
  end: number;
}

export interface PresignedRequest {
  url: string;
  /** Headers the client must send as they are. */
  headers: Record<string, string>;
}

export interface StoredPart {
  partNumber: number;
  size: number;
  /** As the store reports it, without quotes. */
  etag: string;
}

export interface IncompleteUpload {
  key: string;
  uploadId: string;
  initiated: Date;
}
