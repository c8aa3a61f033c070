import path from "node:path";
import { randomBytes } from "node:crypto";
import { BlobError } from "../errors.js";
import { checkKey } from "./blob-key.js";

const UPLOAD_ID = /^[0-9a-f]{32}$/;
const PART_FILE = /^([1-9][0-9]{0,4})\.([0-9a-f]{64})$/;
export const MAX_PART_NUMBER = 10_000;

/**
 * Where everything lives under the store root:
 *
 *   uploads/<uploadId>/meta.json          { key, initiated }
 *   uploads/<uploadId>/<part>.<etag>      one file per stored part
 *   objects/<key>~obj/                    a committed upload directory, plus manifest.json
 *   objects/<key>~obj                     or one file: an object PUT whole (presignPut)
 *   tmp/                                  staging and trash, same filesystem so renames are atomic
 *
 * The "~obj" suffix holds a character keys cannot contain. Without it the
 * object "a" would be the directory that holds the object "a/b", and deleting
 * or replacing "a" would take "a/b" with it.
 */
export class StoreLayout {
  readonly uploadsDir: string;
  readonly objectsDir: string;
  readonly tmpDir: string;

  constructor(readonly root: string) {
    this.uploadsDir = path.join(root, "uploads");
    this.objectsDir = path.join(root, "objects");
    this.tmpDir = path.join(root, "tmp");
  }

  /** Throws not_found for ids this store could never have issued. */
  uploadDir(uploadId: string): string {
    if (!isUploadId(uploadId)) throw new BlobError("not_found", "no such upload");
    return path.join(this.uploadsDir, uploadId);
  }

  objectDir(key: string): string {
    checkKey(key);
    return path.join(this.objectsDir, `${key}~obj`);
  }

  /** A fresh path in tmp/, for staging or for something about to be deleted. */
  tmpPath(label: string): string {
    return path.join(this.tmpDir, `${label}-${randomBytes(8).toString("hex")}`);
  }
}

export const META_FILE = "meta.json";
export const MANIFEST_FILE = "manifest.json";

export function isUploadId(id: string): boolean {
  return typeof id === "string" && UPLOAD_ID.test(id);
}

export function partFileName(partNumber: number, etag: string): string {
  return `${partNumber}.${etag}`;
}

export function parsePartFileName(name: string): { partNumber: number; etag: string } | undefined {
  const m = PART_FILE.exec(name);
  if (!m) return undefined;
  const partNumber = Number(m[1]);
  if (partNumber > MAX_PART_NUMBER) return undefined;
  return { partNumber, etag: m[2]! };
}

export function checkPartNumber(partNumber: number): void {
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PART_NUMBER) {
    throw new BlobError("invalid", `part number must be 1..${MAX_PART_NUMBER}, got ${partNumber}`);
  }
}
