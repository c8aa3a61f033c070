import { sql } from "kysely";
import { ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import { checkRemotePath } from "../../shared/rules/remote-path.js";
import type { Caller } from "../auth/users.js";
import type { Deps } from "../deps.js";
import { DriveError, invalid, notFound } from "../errors.js";
import { checkBaseRevision } from "../files/base-revision.js";
import { commitMany, type CommitItem } from "../files/commit-many.js";
import { withoutJit } from "../files/in-batches.js";
import { lockNamespace } from "../journal/append-entry.js";
import { quote } from "../rpc/request-limits.js";

/**
 * Move (tree.proto): a file, or everything live under a folder, to a new
 * path in one transaction. Each path moved gets a deletion revision where
 * it was (no journal entry of its own, so its history stays) and a new
 * revision where it goes, naming the same blob, with one journal entry (op
 * move, from_path, from_revision). No bytes are copied. Returns how many
 * paths moved.
 */
export async function moveTree(deps: Deps, caller: Caller, req: { from: string; to: string; baseRevision: number | null }): Promise<number> {
  const { from, to } = req;
  if (to === from) throw invalid("to_path is from_path: nothing to move");
  if (to.startsWith(`${from}/`)) throw invalid(`to_path ${quote(to)} lies inside from_path: a folder cannot move into itself`);
  const ns = caller.namespaceId;
  return deps.db.transaction().execute(async (tx) => {
    await withoutJit(tx);
    await lockNamespace(tx, ns);
    const rows = await tx
      .selectFrom("files")
      .selectAll()
      .where("namespace_id", "=", ns)
      .where("deleted", "=", false)
      .where((eb) => eb.or([eb("path", "=", from), eb(sql<boolean>`starts_with(path, ${`${from}/`})`, "=", true)]))
      .orderBy(sql`path collate "C"`)
      .execute();
    if (rows.length === 0) throw notFound(`nothing live at ${quote(from)}`);
    if (req.baseRevision !== null) {
      const self = rows.find((r) => r.path === from);
      if (!self || self.kind !== "file") throw invalid("base_revision is for moving a file; from_path is a folder");
      checkBaseRevision(from, self, req.baseRevision);
    }
    const taken = await tx
      .selectFrom("files")
      .select("path")
      .where("namespace_id", "=", ns)
      .where("deleted", "=", false)
      .where((eb) => eb.or([eb("path", "=", to), eb(sql<boolean>`starts_with(path, ${`${to}/`})`, "=", true)]))
      .limit(1)
      .executeTakeFirst();
    if (taken) {
      throw new DriveError("already_exists", `${quote(taken.path)} is live: a move never replaces what is at its destination`, {
        info: { reason: ErrorReason.DESTINATION_EXISTS },
      });
    }
    const items: CommitItem[] = [];
    for (const r of rows) {
      const dest = to + r.path.slice(from.length);
      const why = checkRemotePath(dest);
      if (why) throw invalid(`${quote(r.path)} would move to a path that is not valid: ${why}`);
      items.push({ path: r.path, content: null, mode: null, mtimeUs: null, baseRevision: r.revision, journal: "none" });
      items.push({
        path: dest,
        content: r.kind === "folder" ? { kind: "folder" } : { kind: "file", blob: { id: r.blob_id!, size: r.size, contentHash: r.content_hash!, hashKind: r.content_hash_kind! } },
        mode: r.mode,
        mtimeUs: r.mtime_us,
        baseRevision: null,
        journal: { op: "move", fromPath: r.path, fromRevision: r.revision + 1 },
      });
    }
    const outcomes = await commitMany(tx, { namespaceId: ns, authorId: caller.user.id }, items);
    // Nothing else can write this namespace while we hold its lock, so any failure here is a bug: roll it all back.
    for (const o of outcomes) if (!o.ok) throw o.error;
    return rows.length;
  });
}
