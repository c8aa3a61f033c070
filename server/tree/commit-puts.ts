import { sql } from "kysely";
import { ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import type { Caller } from "../auth/users.js";
import { BlobError } from "../blob/errors.js";
import type { Deps } from "../deps.js";
import { DriveError, invalid, uploadNotFound } from "../errors.js";
import { commitMany } from "../files/commit-many.js";
import { inBatches, withoutJit } from "../files/in-batches.js";
import type { FileRow, UploadRow } from "../metadata/schema.js";
import { mapLimit } from "./map-limit.js";

export type CommitOutcome = { ok: true; file: FileRow } | { ok: false; error: DriveError };

/** Store stats in flight at once: S3 answers each HEAD in a few ms, so 1,000 take well under a second. */
const STAT_CONCURRENCY = 32;

/**
 * CommitPuts (tree.proto): checks each pending put's object in the store
 * (present, and exactly its size), then commits the lot in one transaction:
 * one blob per distinct content (two paths with the same new bytes share
 * it, and the second object is deleted), its chunk index, and version, head
 * and journal entry per path, as sets. A put already committed answers
 * with the revision it committed. An item that fails its check stays
 * pending; one whose base revision went stale is over, like a
 * CompleteUpload that lost its race.
 */
export async function commitPuts(deps: Deps, caller: Caller, uploadIds: readonly string[]): Promise<CommitOutcome[]> {
  const ns = caller.namespaceId;
  const rows = new Map<string, UploadRow>();
  for (const batch of inBatches(uploadIds, 2000)) {
    for (const r of await deps.db.selectFrom("uploads").selectAll().where("id", "in", batch).where("namespace_id", "=", ns).execute()) rows.set(r.id, r);
  }
  const out: Array<CommitOutcome | undefined> = new Array(uploadIds.length);
  const toCheck: Array<{ index: number; row: UploadRow }> = [];
  const done: Array<{ index: number; row: UploadRow }> = [];
  uploadIds.forEach((id, index) => {
    const row = rows.get(id);
    if (!row) out[index] = { ok: false, error: uploadNotFound() };
    else if (row.kind !== "single") out[index] = { ok: false, error: invalid("this upload is a multipart session: complete it with UploadService.CompleteUpload") };
    else if (row.state === "completed") done.push({ index, row });
    else toCheck.push({ index, row });
  });

  const checks = await mapLimit(toCheck, STAT_CONCURRENCY, async ({ row }) => objectProblem(deps, row));
  const ready: Array<{ index: number; row: UploadRow }> = [];
  toCheck.forEach((item, i) => {
    const problem = checks[i];
    if (problem) out[item.index] = { ok: false, error: problem };
    else ready.push(item);
  });

  const orphans: string[] = [];
  if (ready.length) {
    await deps.db.transaction().execute(async (tx) => {
      await withoutJit(tx);
      // Locked, and read again: a concurrent CommitPuts of the same ids waits here, then finds them completed.
      const locked = new Map<string, UploadRow>();
      for (const batch of inBatches(ready.map((r) => r.row.id), 2000)) {
        for (const r of await tx.selectFrom("uploads").selectAll().where("id", "in", batch).forUpdate().execute()) locked.set(r.id, r);
      }
      const open: Array<{ index: number; row: UploadRow }> = [];
      for (const item of ready) {
        const row = locked.get(item.row.id);
        if (!row) out[item.index] = { ok: false, error: uploadNotFound() };
        else if (row.state === "completed") done.push({ index: item.index, row });
        else open.push({ index: item.index, row });
      }
      if (open.length === 0) return;

      // One blob per content: the first put of each new content gives its object.
      const byHash = new Map<string, UploadRow>();
      for (const { row } of open) if (!byHash.has(row.content_hash.toString("hex"))) byHash.set(row.content_hash.toString("hex"), row);
      const blobs = new Map<string, { id: number; objectKey: string | null }>();
      for (const batch of inBatches([...byHash.values()], 1000)) {
        const made = await tx
          .insertInto("blobs")
          .values(
            batch.map((u) => ({
              namespace_id: ns,
              content_hash: u.content_hash,
              size: u.size,
              object_key: u.object_key,
              chunks: null,
              hash_kind: 1 as const,
              stored_size: u.size,
              chunk_count: u.chunk_count,
            })),
          )
          .onConflict((oc) => oc.constraint("blobs_content").doNothing())
          .returning(["id", "content_hash", "object_key"])
          .execute();
        for (const b of made) blobs.set(b.content_hash.toString("hex"), { id: b.id, objectKey: b.object_key });
        if (made.length) {
          // Chunks of a single PUT are stored raw and back to back: stored offsets are plain offsets.
          const pairs = made.map((b) => ({ blob: b.id, upload: byHash.get(b.content_hash.toString("hex"))!.id }));
          const inserted = await sql`
            insert into blob_chunks (blob_id, seq, namespace_id, hash, size, plain_offset, stored_offset, stored_size, codec)
            select m.blob_id, uc.seq, ${ns}, uc.hash, uc.size,
              sum(uc.size) over w - uc.size, sum(uc.size) over w - uc.size, uc.size, 1
            from unnest(${pairs.map((p) => p.blob)}::bigint[], ${pairs.map((p) => p.upload)}::text[]) as m(blob_id, upload_id)
            join upload_chunks uc on uc.upload_id = m.upload_id
            window w as (partition by m.blob_id order by uc.seq)
          `.execute(tx);
          const want = made.reduce((n, b) => n + byHash.get(b.content_hash.toString("hex"))!.chunk_count, 0);
          if (Number(inserted.numAffectedRows ?? 0) !== want) throw new Error(`CommitPuts: ${inserted.numAffectedRows} chunk rows for ${want} chunks`);
        }
        const missing = batch.filter((u) => !blobs.has(u.content_hash.toString("hex")));
        if (missing.length) {
          const existing = await tx
            .selectFrom("blobs")
            .select(["id", "content_hash", "object_key"])
            .where("namespace_id", "=", ns)
            .where("content_hash", "in", missing.map((u) => u.content_hash))
            .execute();
          for (const b of existing) blobs.set(b.content_hash.toString("hex"), { id: b.id, objectKey: b.object_key });
        }
      }

      const outcomes = await commitMany(
        tx,
        { namespaceId: ns, authorId: caller.user.id },
        open.map(({ row }) => ({
          path: row.path,
          content: { kind: "file", blob: { id: blobs.get(row.content_hash.toString("hex"))!.id, size: row.size, contentHash: row.content_hash, hashKind: 1 } },
          mode: row.mode,
          mtimeUs: row.mtime_us,
          baseRevision: row.base_revision,
        })),
      );
      const completed: Array<{ id: string; revision: number }> = [];
      const over: string[] = [];
      outcomes.forEach((o, i) => {
        const { index, row } = open[i]!;
        out[index] = o.ok ? { ok: true, file: o.file } : { ok: false, error: o.error };
        // An object no blob names is no one's: the content was stored already, or the put is over.
        if (blobs.get(row.content_hash.toString("hex"))!.objectKey !== row.object_key) orphans.push(row.object_key);
        if (o.ok) completed.push({ id: row.id, revision: o.file.revision });
        else over.push(row.id);
      });
      if (completed.length) {
        await sql`
          update uploads set state = 'completed', result_revision = v.revision
          from unnest(${completed.map((c) => c.id)}::text[], ${completed.map((c) => c.revision)}::bigint[]) as v(id, revision)
          where uploads.id = v.id
        `.execute(tx);
      }
      if (over.length) await tx.deleteFrom("uploads").where("id", "in", over).execute();
      const finished = [...completed.map((c) => c.id), ...over];
      for (const batch of inBatches(finished, 2000)) await tx.deleteFrom("upload_chunks").where("upload_id", "in", batch).execute();
    });
  }

  if (done.length) {
    const results = await completedResults(deps, ns, done.map((d) => d.row));
    for (const d of done) out[d.index] = { ok: true, file: results.get(d.row.id)! };
  }
  await mapLimit(orphans, STAT_CONCURRENCY, (key) =>
    deps.store.delete(key).catch((err: unknown) => deps.log.warn("could not delete unused object", { key, err })),
  );
  return out as CommitOutcome[];
}

/** Why the put's object cannot be committed yet, or null when it is in the store at its size. */
async function objectProblem(deps: Deps, row: UploadRow): Promise<DriveError | null> {
  let size: number;
  try {
    ({ size } = await deps.store.stat(row.object_key));
  } catch (err) {
    if (!(err instanceof BlobError) || err.code !== "not_found") throw err;
    return new DriveError("failed_precondition", `${row.path}: its bytes are not in the store yet: PUT them (BeginPuts again gives a fresh URL), then commit`, {
      info: { reason: ErrorReason.PARTS_MISSING, detail: { case: "partsIncomplete", value: { missing: [1], missingCount: 1 } } },
    });
  }
  if (size === row.size) return null;
  return new DriveError("failed_precondition", `${row.path}: the store holds ${size} bytes where ${row.size} were declared: PUT the file again, then commit`, {
    info: { reason: ErrorReason.PARTS_UNCONFIRMED, detail: { case: "partsIncomplete", value: { unconfirmed: [1], unconfirmedCount: 1 } } },
  });
}

/** The versions completed puts committed, for retries, in one query. */
async function completedResults(deps: Deps, ns: number, rows: readonly UploadRow[]): Promise<Map<string, FileRow>> {
  const found = await sql<FileRow & { upload_id: string }>`
    select u.id as upload_id, f.id, f.namespace_id, f.path, v.revision, v.deleted, v.blob_id, v.size, v.content_hash,
      v.content_hash_kind, v.kind, v.mode, v.mtime_us, v.created_at as modified_at
    from unnest(${rows.map((r) => r.id)}::text[], ${rows.map((r) => r.path)}::text[], ${rows.map((r) => r.result_revision)}::bigint[]) as u(id, path, revision)
    join files f on f.namespace_id = ${ns} and f.path = u.path
    join versions v on v.file_id = f.id and v.revision = u.revision
  `.execute(deps.db);
  return new Map(found.rows.map(({ upload_id, ...file }) => [upload_id, file]));
}
