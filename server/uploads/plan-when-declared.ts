import type { Transaction } from "kysely";
import type { Deps } from "../deps.js";
import { uploadNotFound } from "../errors.js";
import type { Database, UploadRow } from "../metadata/schema.js";
import { planUpload } from "./plan-upload.js";
import type { PlanPart } from "./upload-plan.js";

/** An open upload's row, locked until the transaction ends: its pages and its plan change one call at a time. */
export async function lockOpenUpload(tx: Transaction<Database>, uploadId: string): Promise<UploadRow> {
  const row = await tx.selectFrom("uploads").selectAll().where("id", "=", uploadId).where("state", "=", "open").forUpdate().executeTakeFirst();
  if (!row) throw uploadNotFound();
  return row;
}

/**
 * Plans an upload once its last chunk is declared, unless another call did
 * already: the row lock makes exactly one call plan it, on any instance.
 * Returns the row as it stands and, when this call made it, the plan.
 */
export async function planWhenDeclared(deps: Deps, uploadId: string): Promise<{ upload: UploadRow; fresh?: PlanPart[] }> {
  return deps.db.transaction().execute(async (tx) => {
    const upload = await lockOpenUpload(tx, uploadId);
    if (upload.planned || upload.chunks_declared < upload.chunk_count) return { upload };
    const fresh = await planUpload(tx, upload, deps.store);
    return { upload: { ...upload, planned: true }, fresh };
  });
}
