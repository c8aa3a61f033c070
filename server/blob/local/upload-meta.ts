import { readFile } from "node:fs/promises";
import path from "node:path";
import { isErrno } from "./fs-errors.js";
import { META_FILE } from "./store-layout.js";

/** uploads/<uploadId>/meta.json: which key the upload will become, and since when. */
export interface UploadMeta {
  key: string;
  /** ISO 8601. */
  initiated: string;
}

/** The upload's meta, or undefined when the upload is gone. */
export async function readMeta(uploadDir: string): Promise<UploadMeta | undefined> {
  try {
    return JSON.parse(await readFile(path.join(uploadDir, META_FILE), "utf8")) as UploadMeta;
  } catch (err) {
    if (isErrno(err, "ENOENT", "ENOTDIR")) return undefined;
    throw err;
  }
}
