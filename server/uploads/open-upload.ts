import type { Deps } from "../deps.js";
import { uploadCompleted, uploadNotFound } from "../errors.js";
import type { UploadRow } from "../metadata/schema.js";
import { extendUpload } from "./extend-upload.js";

/** An upload of the caller's namespace that is still open; the call keeps it from expiring. */
export async function openUpload(deps: Deps, namespaceId: number, uploadId: string): Promise<UploadRow> {
  const upload = await deps.db
    .selectFrom("uploads")
    .selectAll()
    .where("id", "=", uploadId)
    .where("namespace_id", "=", namespaceId)
    .executeTakeFirst();
  if (!upload) throw uploadNotFound();
  if (upload.state !== "open") throw uploadCompleted();
  if (!(await extendUpload(deps, upload))) throw uploadNotFound();
  return upload;
}
