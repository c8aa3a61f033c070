import type { Caller } from "../auth/users.js";
import type { Deps } from "../deps.js";

/** Discards an open upload and its parts; a gone or completed upload is left as it is. */
export async function abortUpload(deps: Deps, caller: Caller, uploadId: string): Promise<void> {
  const upload = await deps.db
    .deleteFrom("uploads")
    .where("id", "=", uploadId)
    .where("namespace_id", "=", caller.namespaceId)
    .where("state", "=", "open")
    .returning(["object_key", "store_upload_id"])
    .executeTakeFirst();
  if (upload) await deps.store.abortMultipart(upload.object_key, upload.store_upload_id);
}
