import type { Caller } from "../auth/users.js";
import type { Deps } from "../deps.js";
import { DriveError } from "../errors.js";
import { commitMany } from "../files/commit-many.js";
import { withoutJit } from "../files/in-batches.js";
import type { FileRow } from "../metadata/schema.js";

export type DeleteOutcome = { ok: true; file: FileRow } | { ok: false; error: DriveError };

/**
 * DeletePaths (tree.proto): a deletion revision per path, files and folder
 * entries alike, in one transaction; a path with nothing live, or a stale
 * base revision, fails that item alone.
 */
export async function deletePaths(
  deps: Deps,
  caller: Caller,
  items: ReadonlyArray<{ path: string; baseRevision: number | null } | DriveError>,
): Promise<DeleteOutcome[]> {
  const todo = items.flatMap((item, index) => (item instanceof DriveError ? [] : [{ item, index }]));
  const out: DeleteOutcome[] = items.map((item) => (item instanceof DriveError ? { ok: false, error: item } : (undefined as never)));
  if (todo.length === 0) return out;
  const outcomes = await deps.db.transaction().execute(async (tx) => {
    await withoutJit(tx);
    return commitMany(
      tx,
      { namespaceId: caller.namespaceId, authorId: caller.user.id },
      todo.map(({ item }) => ({ path: item.path, content: null, mode: null, mtimeUs: null, baseRevision: item.baseRevision })),
    );
  });
  outcomes.forEach((o, i) => (out[todo[i]!.index] = o.ok ? { ok: true, file: o.file } : { ok: false, error: o.error }));
  return out;
}
