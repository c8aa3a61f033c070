import { BlobError } from "../errors.js";
import { checkKey } from "./blob-key.js";
import { UrlSigner } from "./url-signer.js";
import { isUploadId, MAX_PART_NUMBER } from "./store-layout.js";

export const PARTS_PATH = "/blob/v1/parts/";
export const OBJECTS_PATH = "/blob/v1/objects";

/** What a verified part URL lets its bearer do: PUT at most `maxSize` bytes. */
export interface PartGrant {
  key: string;
  uploadId: string;
  partNumber: number;
  maxSize: number;
}

/** What a verified object PUT URL lets its bearer do: PUT exactly `size` bytes as `key`. */
export interface ObjectGrant {
  key: string;
  size: number;
}

/** The outcome of checking a request against the URL it was made to. */
export type BlobUrlCheck =
  | { kind: "not_blob" }
  | { kind: "denied"; route: "part" | "object"; code: "AccessDenied" | "SignatureDoesNotMatch"; message: string }
  | { kind: "part"; grant: PartGrant }
  | { kind: "put"; grant: ObjectGrant }
  | { kind: "object"; key: string };

const DIGITS = /^(0|[1-9][0-9]{0,15})$/;

/**
 * The shape of the local store's presigned URLs, in one place: building them
 * and checking requests made to them.
 *
 *   PUT {origin}/blob/v1/parts/<uploadId>/<part>?key=&size=&expires=&sig=
 *   GET {origin}/blob/v1/objects?key=&expires=&sig=
 *   PUT {origin}/blob/v1/objects?key=&size=&expires=&sig=
 *
 * A part URL's `size` is the most bytes the PUT may carry; an object PUT
 * URL's is the exact count.
 */
export class BlobUrls {
  readonly #signer: UrlSigner;

  constructor(secret: Buffer) {
    this.#signer = new UrlSigner(secret);
  }

  part(origin: string, grant: PartGrant, expires: number): string {
    const sig = this.#signer.sign(partFields(grant, expires));
    const query = new URLSearchParams({ key: grant.key, size: String(grant.maxSize), expires: String(expires), sig });
    return `${trimOrigin(origin)}${PARTS_PATH}${grant.uploadId}/${grant.partNumber}?${query}`;
  }

  object(origin: string, key: string, expires: number): string {
    const sig = this.#signer.sign(objectFields(key, expires));
    const query = new URLSearchParams({ key, expires: String(expires), sig });
    return `${trimOrigin(origin)}${OBJECTS_PATH}?${query}`;
  }

  objectPut(origin: string, grant: ObjectGrant, expires: number): string {
    const sig = this.#signer.sign(objectPutFields(grant, expires));
    const query = new URLSearchParams({ key: grant.key, size: String(grant.size), expires: String(expires), sig });
    return `${trimOrigin(origin)}${OBJECTS_PATH}?${query}`;
  }

  /**
   * Checks method, parameters, signature and expiry, in that order, without
   * touching the disk. Every field is validated before the signature so no
   * field can smuggle in a separator.
   */
  check(method: string | undefined, rawUrl: string | undefined, nowSeconds: number): BlobUrlCheck {
    let url: URL;
    try {
      url = new URL(rawUrl ?? "/", "http://blob.invalid");
    } catch {
      return { kind: "not_blob" }; // not a path we could have issued
    }
    const q = url.searchParams;
    const expires = q.get("expires") ?? "";
    const sig = q.get("sig") ?? "";
    const key = q.get("key") ?? "";

    if (url.pathname.startsWith(PARTS_PATH)) {
      const deny = denier("part");
      const [uploadId = "", partText = "", ...rest] = url.pathname.slice(PARTS_PATH.length).split("/");
      const size = q.get("size") ?? "";
      if (method !== "PUT") return deny("SignatureDoesNotMatch", "this URL is signed for PUT");
      const wellFormed =
        rest.length === 0 &&
        isUploadId(uploadId) &&
        DIGITS.test(partText) &&
        Number(partText) >= 1 &&
        Number(partText) <= MAX_PART_NUMBER &&
        DIGITS.test(size) &&
        DIGITS.test(expires) &&
        isValidKey(key);
      if (!wellFormed || !sig) return deny("AccessDenied", "malformed presigned URL");
      const grant = { key, uploadId, partNumber: Number(partText), maxSize: Number(size) };
      if (!this.#signer.verify(partFields(grant, Number(expires)), sig)) {
        return deny("SignatureDoesNotMatch", "signature does not match");
      }
      if (nowSeconds > Number(expires)) return deny("AccessDenied", "Request has expired");
      return { kind: "part", grant };
    }

    if (url.pathname === OBJECTS_PATH && method === "PUT") {
      const deny = denier("object");
      const size = q.get("size") ?? "";
      if (!DIGITS.test(size) || !DIGITS.test(expires) || !isValidKey(key) || !sig) return deny("AccessDenied", "malformed presigned URL");
      const grant = { key, size: Number(size) };
      if (!this.#signer.verify(objectPutFields(grant, Number(expires)), sig)) return deny("SignatureDoesNotMatch", "signature does not match");
      if (nowSeconds > Number(expires)) return deny("AccessDenied", "Request has expired");
      return { kind: "put", grant };
    }

    if (url.pathname === OBJECTS_PATH) {
      const deny = denier("object");
      if (method !== "GET") return deny("SignatureDoesNotMatch", "this URL is signed for GET");
      if (!DIGITS.test(expires) || !isValidKey(key) || !sig) return deny("AccessDenied", "malformed presigned URL");
      if (!this.#signer.verify(objectFields(key, Number(expires)), sig)) {
        return deny("SignatureDoesNotMatch", "signature does not match");
      }
      if (nowSeconds > Number(expires)) return deny("AccessDenied", "Request has expired");
      return { kind: "object", key };
    }

    return { kind: "not_blob" };
  }
}

function partFields(g: PartGrant, expires: number): string[] {
  return ["PUT", g.key, g.uploadId, String(g.partNumber), String(g.maxSize), String(expires)];
}

// "PUT-OBJECT", not "PUT": a part grant's fields can never read as an object grant's.
function objectPutFields(g: ObjectGrant, expires: number): string[] {
  return ["PUT-OBJECT", g.key, String(g.size), String(expires)];
}

function objectFields(key: string, expires: number): string[] {
  return ["GET", key, String(expires)];
}

function denier(route: "part" | "object") {
  return (code: "AccessDenied" | "SignatureDoesNotMatch", message: string): BlobUrlCheck => ({
    kind: "denied",
    route,
    code,
    message,
  });
}

function isValidKey(key: string): boolean {
  try {
    checkKey(key);
    return true;
  } catch {
    return false;
  }
}

function trimOrigin(origin: string): string {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    throw new BlobError("invalid", `origin ${JSON.stringify(origin)} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new BlobError("invalid", `origin ${JSON.stringify(origin)} is not http(s)`);
  }
  return origin.replace(/\/+$/, "");
}
