import type { Caller } from "../auth/users.js";
import type { Deps } from "../deps.js";

/** Discards an open upload and its parts; a gone or completed upload is left as it is. */
export async function abortUpload(deps: Deps, caller: Caller, uploadId: string): Promise<void> {
  const upload = await deps.db
    .deleteFrom("uploads")
    .where("id", "=", uploadId)
    .where("namespace_id", "=", caller.namespaceId)
    .where("state", "=", "open")
    .returning(["kind", "object_key", "store_upload_id"])
    .executeTakeFirst();
  if (upload) await discardInStore(deps, upload);
}

/** Removes what an upload holds in the store: a multipart session, or a single PUT's object. */
export async function discardInStore(deps: Deps, upload: { kind: "multipart" | "single"; object_key: string; store_upload_id: string }): Promise<void> {
  if (upload.kind === "single") await deps.store.delete(upload.object_key);
  else await deps.store.abortMultipart(upload.object_key, upload.store_upload_id);
}
