import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { MIN_PART_SIZE } from "../../../shared/rules/part-rules.js";
import type { StoredPart } from "../blob-store.js";
import { BlobError } from "../errors.js";
import { ignoreMissing } from "./fs-errors.js";
import { MANIFEST_FILE, parsePartFileName, partFileName } from "./store-layout.js";

/** manifest.json of a committed object: its parts in order, with sizes. */
export interface ObjectManifest {
  key: string;
  size: number;
  parts: ManifestPart[];
}

export interface ManifestPart {
  partNumber: number;
  etag: string;
  size: number;
}

export async function readManifest(objectDir: string): Promise<ObjectManifest> {
  return JSON.parse(await readFile(path.join(objectDir, MANIFEST_FILE), "utf8")) as ObjectManifest;
}

export function manifestPartPath(objectDir: string, part: ManifestPart): string {
  return path.join(objectDir, partFileName(part.partNumber, part.etag));
}

/**
 * The manifest that completing `uploadDir` with `parts` would commit. Refuses,
 * as S3 does, with BlobError "invalid": a part not stored under that ETag,
 * and a part but the last under MIN_PART_SIZE. Parts must already be in
 * ascending order.
 */
export async function buildManifest(
  key: string,
  uploadDir: string,
  parts: ReadonlyArray<Pick<StoredPart, "partNumber" | "etag">>,
): Promise<ObjectManifest> {
  const listed: ManifestPart[] = [];
  for (const [i, p] of parts.entries()) {
    const etag = p.etag.replace(/^"|"$/g, "");
    const name = partFileName(p.partNumber, etag);
    // Parsing the name back refuses ETags that are not ours, such as "../x".
    const st = parsePartFileName(name) ? await stat(path.join(uploadDir, name)).catch(ignoreMissing) : undefined;
    if (!st) throw new BlobError("invalid", `part ${p.partNumber} with etag ${etag} is not stored`);
    if (i < parts.length - 1 && st.size < MIN_PART_SIZE) {
      throw new BlobError("invalid", `part ${p.partNumber} is ${st.size} bytes; all but the last must be at least ${MIN_PART_SIZE}`);
    }
    listed.push({ partNumber: p.partNumber, etag, size: st.size });
  }
  return { key, size: listed.reduce((sum, p) => sum + p.size, 0), parts: listed };
}
