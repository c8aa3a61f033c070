import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createUser, authenticate, type Caller } from "../../server/auth/users.js";
import { MiB } from "../../shared/rules/part-rules.js";
import { DriveError } from "../../server/errors.js";
import { commitVersion } from "../../server/files/commit-version.js";
import { completeUpload } from "../../server/uploads/complete-upload.js";
import { createUpload } from "../../server/uploads/create-upload.js";
import { sweepUploads } from "../../server/uploads/upload-sweeper.js";
import { openTestDeps, type TestDeps } from "../support/test-database.js";
import type { LocalBlobStore } from "../../server/blob/local/local-store.js";
import { reportParts } from "../../server/uploads/report-parts.js";
import { fakeSpec, specOf } from "./upload-specs.js";

// Six chunks of 4 MiB and a tail: one or two parts, whatever the planner's grouping.
const spec = (path: string, seed: string) => fakeSpec(path, seed, 20 * MiB + 1000);

describe("upload sessions on real PostgreSQL and the local store", () => {
  let deps: TestDeps;
  let alice: Caller;
  const opts = { origin: "http://127.0.0.1:1", window: 0 };

  beforeAll(async () => {
    deps = await openTestDeps({ uploadTtlMs: 60_000 });
    const { token } = await createUser(deps.db, "alice", false);
    alice = (await authenticate(deps.db, token))!;
  });
  afterAll(() => deps?.close());

  it("resumes an open upload of the same content to the same path", async () => {
    const first = await createUpload(deps, alice, spec("r.bin", "resume"), opts);
    const again = await createUpload(deps, alice, spec("r.bin", "resume"), opts);
    expect(first.kind === "open" && again.kind === "open").toBe(true);
    if (first.kind !== "open" || again.kind !== "open") return;
    expect(again.upload.id).toBe(first.upload.id);
    expect(again.resumed).toBe(true);
    expect(first.view.parts.length).toBeGreaterThan(0);
    expect(first.view.urls.map((u) => u.partNumber)).toEqual(first.view.parts.map((p) => p.partNumber));
    expect(again.view.parts).toEqual(first.view.parts);
  });

  it("refuses to complete while parts are missing, naming them", async () => {
    const open = await createUpload(deps, alice, spec("m.bin", "missing"), opts);
    if (open.kind !== "open") throw new Error("expected an open upload");
    const numbers = open.view.parts.map((p) => p.partNumber).join(", ");
    await expect(completeUpload(deps, alice, open.upload.id)).rejects.toThrow(`parts missing from the store: ${numbers}`);
  });

  it("sweeps expired uploads from the store and the database, one instance at a time", async () => {
    const open = await createUpload(deps, alice, spec("s.bin", "sweep"), opts);
    if (open.kind !== "open") throw new Error("expected an open upload");
    const incomplete = async () => {
      const ids: string[] = [];
      for await (const u of deps.store.listIncompleteUploads()) ids.push(u.uploadId);
      return ids;
    };
    expect(await incomplete()).toContain(open.upload.store_upload_id);

    // Another instance holding the sweeper's lock: this one skips its pass.
    const blocked = await deps.db.transaction().execute(async (tx) => {
      await sql`select pg_advisory_xact_lock(hashtext('drive.upload-sweeper'))`.execute(tx);
      return sweepUploads(deps, new Date(Date.now() + 120_000));
    });
    expect(blocked).toBeNull();

    const swept = await sweepUploads(deps, new Date(Date.now() + 120_000));
    expect(swept).toBeGreaterThanOrEqual(1);
    expect(await incomplete()).toEqual([]);
    const rows = await deps.db.selectFrom("uploads").select("id").where("state", "=", "open").execute();
    expect(rows).toEqual([]);
    // Its chunks, plan and parts go with it.
    for (const table of ["upload_parts", "upload_chunks", "upload_plan"] as const) {
      expect(await deps.db.selectFrom(table).select("upload_id").execute(), table).toEqual([]);
    }
  });

  it("leaves alone an old store upload whose row is still live, and aborts one with no row", async () => {
    const live = await createUpload(deps, alice, spec("live.bin", "live"), opts);
    if (live.kind !== "open") throw new Error("expected an open upload");
    // Resumed lately: the row lives on though the store upload is old.
    await deps.db.updateTable("uploads").set({ expires_at: new Date(Date.now() + 3_600_000) }).where("id", "=", live.upload.id).execute();
    const orphanKey = `ns/${alice.namespaceId}/orphan`;
    const orphan = await deps.store.createMultipart(orphanKey);

    await sweepUploads(deps, new Date(Date.now() + 120_000));
    const left: string[] = [];
    for await (const u of deps.store.listIncompleteUploads("ns/")) left.push(u.uploadId);
    expect(left).toContain(live.upload.store_upload_id);
    expect(left).not.toContain(orphan);
  });

  it("assembles outside the namespace lock, and drops the object when a write took the path meanwhile", async () => {
    const store = deps.store as LocalBlobStore;
    const race = { ...specOf("race.bin", randomBytes(1000)), baseRevision: 0 };
    const open = await createUpload(deps, alice, race, opts);
    if (open.kind !== "open") throw new Error("expected an open upload");
    const { object_key: key, store_upload_id: storeId } = open.upload;
    const part = await store.receivePart({ key, uploadId: storeId, partNumber: 1, size: 1000 }, Readable.from(race.bodies));
    await reportParts(deps, alice.namespaceId, open.upload.id, [{ partNumber: 1, etag: part.etag, codec: 1, storedSizes: [] }]);

    // While the store assembles, another client commits the path: the namespace is not locked then.
    const complete = store.completeMultipart.bind(store);
    store.completeMultipart = async (...args) => {
      await deps.db.transaction().execute(async (tx) => {
        const blob = await tx
          .insertInto("blobs")
          .values({ namespace_id: alice.namespaceId, content_hash: Buffer.alloc(32, 9), size: 0, object_key: null, chunks: null, stored_size: 0, chunk_count: 0 })
          .returning("id")
          .executeTakeFirstOrThrow();
        await commitVersion(tx, { namespaceId: alice.namespaceId, path: "race.bin", authorId: alice.user.id, blob: { id: blob.id, size: 0, contentHash: Buffer.alloc(32, 9), hashKind: 1 }, baseRevision: null });
      });
      return complete(...args);
    };
    try {
      await expect(completeUpload(deps, alice, open.upload.id)).rejects.toMatchObject({ code: "failed_precondition" });
    } finally {
      store.completeMultipart = complete;
    }
    // Nothing is left behind: not the assembled object, not the upload row.
    await expect(store.stat(key)).rejects.toMatchObject({ code: "not_found" });
    expect(await deps.db.selectFrom("uploads").select("id").where("id", "=", open.upload.id).execute()).toEqual([]);
  });

  it("keeps the journal gap-free under concurrent commits", async () => {
    const { token } = await createUser(deps.db, "journal-user", false);
    const caller = (await authenticate(deps.db, token))!;
    const blob = await deps.db
      .insertInto("blobs")
      .values({ namespace_id: caller.namespaceId, content_hash: Buffer.alloc(32, 7), size: 0, object_key: null, chunks: null, stored_size: 0, chunk_count: 0 })
      .returning("id")
      .executeTakeFirstOrThrow();
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        deps.db.transaction().execute((tx) =>
          commitVersion(tx, {
            namespaceId: caller.namespaceId,
            path: `j/${i % 5}`,
            authorId: caller.user.id,
            blob: i % 2 ? { id: blob.id, size: 0, contentHash: Buffer.alloc(32, 7), hashKind: 1 } : null,
            baseRevision: null,
          }).catch((err) => {
            // Deleting what is already deleted is refused; nothing is journaled for it.
            if (!(err instanceof DriveError && err.code === "not_found")) throw err;
          }),
        ),
      ),
    );
    const seqs = (
      await deps.db.selectFrom("journal").select("seq").where("namespace_id", "=", caller.namespaceId).orderBy("seq").execute()
    ).map((r) => r.seq);
    expect(seqs.length).toBeGreaterThan(0);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    const ns = await deps.db.selectFrom("namespaces").select("journal_seq").where("id", "=", caller.namespaceId).executeTakeFirstOrThrow();
    expect(ns.journal_seq).toBe(seqs.length);
  });
});
