import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authenticate, createUser, type Caller } from "../../server/auth/users.js";
import { GiB, MiB } from "../../shared/rules/part-rules.js";
import { DriveError } from "../../server/errors.js";
import { abortUpload } from "../../server/uploads/abort-upload.js";
import { createUpload } from "../../server/uploads/create-upload.js";
import { extendUpload } from "../../server/uploads/extend-upload.js";
import { sweepUploads } from "../../server/uploads/upload-sweeper.js";
import { openTestDeps, type TestDeps } from "../support/test-database.js";
import { fakeSpec } from "./upload-specs.js";

/** An upload of `chunks` chunks of `chunkSize`, declared in full. */
const spec = (path: string, seed: string, chunkSize = 4 * MiB, chunks = 3) => fakeSpec(path, seed, chunkSize * chunks, chunkSize);
const opts = { origin: "http://127.0.0.1:1", window: 1 };

describe("per-user limits on open uploads, on real PostgreSQL", () => {
  let deps: TestDeps;
  let alice: Caller;
  let bob: Caller;

  beforeAll(async () => {
    deps = await openTestDeps({ limits: { openUploads: 3, openUploadBytes: 40 * GiB } });
    alice = (await authenticate(deps.db, (await createUser(deps.db, "alice", false)).token))!;
    bob = (await authenticate(deps.db, (await createUser(deps.db, "bob", false)).token))!;
  });
  afterAll(() => deps?.close());

  it("lets exactly the limit through when many CreateUploads race", async () => {
    const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => createUpload(deps, alice, spec(`race-${i}.bin`, `race-${i}`), opts)));
    const refused = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason as DriveError);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(3);
    expect(refused).toHaveLength(9);
    for (const err of refused) {
      expect(err).toBeInstanceOf(DriveError);
      expect(err.code).toBe("resource_exhausted");
      expect(err.message).toMatch(/limit is 3 per user \(--max-open-uploads\)/);
    }
    const open = await deps.db.selectFrom("uploads").select("id").where("user_id", "=", alice.user.id).where("state", "=", "open").execute();
    expect(open).toHaveLength(3);
    // A refused upload leaves nothing behind in the store.
    let incomplete = 0;
    for await (const _ of deps.store.listIncompleteUploads()) incomplete++;
    expect(incomplete).toBe(3);
  });

  it("still resumes an open upload at the limit, counts per user, and frees a slot on abort", async () => {
    // Whichever three won the race above, resuming one of them is allowed.
    const openRows = await deps.db.selectFrom("uploads").select(["id", "path"]).where("user_id", "=", alice.user.id).where("state", "=", "open").execute();
    const [first] = openRows;
    const n = first!.path.match(/race-(\d+)/)![1]!;
    const resumed = await createUpload(deps, alice, spec(first!.path, `race-${n}`), opts);
    expect(resumed).toMatchObject({ kind: "open", resumed: true });

    expect(await createUpload(deps, bob, spec("bob.bin", "bob"), opts)).toMatchObject({ kind: "open" });

    await expect(createUpload(deps, alice, spec("more.bin", "more"), opts)).rejects.toMatchObject({ code: "resource_exhausted" });
    await abortUpload(deps, alice, first!.id);
    expect(await createUpload(deps, alice, spec("more.bin", "more"), opts)).toMatchObject({ kind: "open" });
  });

  it("refuses past the declared bytes, naming the limit and its value", async () => {
    // bob has one 12 MiB upload open; 40 GiB is the cap: a 20 GiB upload fits, a second does not.
    expect(await createUpload(deps, bob, spec("b1.bin", "b1", 4 * MiB, 5 * 1024), opts)).toMatchObject({ kind: "open" });
    await expect(createUpload(deps, bob, spec("b2.bin", "b2", 4 * MiB, 5 * 1024), opts)).rejects.toMatchObject({
      code: "resource_exhausted",
      message: expect.stringMatching(/would declare 40 GiB: the limit is 40 GiB per user \(--max-open-upload-bytes\)/),
    });
  });
});

describe("activity keeps an upload from expiring", () => {
  let deps: TestDeps;
  let carol: Caller;
  const ttl = 60_000;

  beforeAll(async () => {
    deps = await openTestDeps({ uploadTtlMs: ttl });
    carol = (await authenticate(deps.db, (await createUser(deps.db, "carol", false)).token))!;
  });
  afterAll(() => deps?.close());

  const expiry = async (id: string) =>
    (await deps.db.selectFrom("uploads").select("expires_at").where("id", "=", id).executeTakeFirstOrThrow()).expires_at.getTime();

  it("moves the expiry a full TTL ahead, writing only once a tenth of the TTL has passed", async () => {
    const open = await createUpload(deps, carol, spec("long.bin", "long"), opts);
    if (open.kind !== "open") throw new Error("expected an open upload");
    const created = await expiry(open.upload.id);

    // Just after creation: no write.
    expect(await extendUpload(deps, open.upload)).toBe(true);
    expect(await expiry(open.upload.id)).toBe(created);

    // A call 0.2 TTL later (as the row still says) moves it.
    const later = created - ttl + 0.2 * ttl;
    expect(await extendUpload(deps, open.upload, later)).toBe(true);
    expect(await expiry(open.upload.id)).toBe(later + ttl);

    // Past the original expiry, the sweeper leaves it.
    const swept = await sweepUploads(deps, new Date(created + 1000));
    expect(swept).toBe(0);
    expect(await expiry(open.upload.id)).toBe(later + ttl);
  });

  it("survives a sweep that found it expired but waited on its row while a call extended it", async () => {
    const open = await createUpload(deps, carol, spec("raced.bin", "raced"), opts);
    if (open.kind !== "open") throw new Error("expected an open upload");
    const id = open.upload.id;
    await deps.db.updateTable("uploads").set({ expires_at: new Date(Date.now() - 1000) }).where("id", "=", id).execute();

    let sweep!: Promise<number | null>;
    await deps.db.transaction().execute(async (tx) => {
      // A call holds the row, as extendUpload's update does, while the sweep starts.
      await tx.selectFrom("uploads").select("id").where("id", "=", id).forUpdate().execute();
      sweep = sweepUploads(deps);
      // Wait until the sweep's delete is blocked on this row.
      for (let i = 0; ; i++) {
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_locks where not granted`.execute(deps.db);
        if (rows[0]!.n > 0) break;
        if (i > 500) throw new Error("the sweep never waited on the row");
        await new Promise((r) => setTimeout(r, 10));
      }
      await tx.updateTable("uploads").set({ expires_at: new Date(Date.now() + ttl) }).where("id", "=", id).execute();
    });
    expect(await sweep).toBe(0);
    expect(await deps.db.selectFrom("uploads").select("id").where("id", "=", id).executeTakeFirst()).toEqual({ id });
  });

  it("says so when the upload is gone", async () => {
    const open = await createUpload(deps, carol, spec("gone.bin", "gone"), opts);
    if (open.kind !== "open") throw new Error("expected an open upload");
    await abortUpload(deps, carol, open.upload.id);
    expect(await extendUpload(deps, open.upload, Date.now() + ttl)).toBe(false);
  });
});
