import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { Kysely, Migrator, PostgresDialect } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../server/log.js";
import { openDatabase, type Db } from "../../server/metadata/database.js";
import { startEmbeddedPostgres } from "../../server/metadata/embedded-postgres.js";
import { migrations } from "../../server/metadata/migrations/index.js";
import { contentHash } from "../../shared/rules/content-hash.js";
import { MiB } from "../../shared/rules/part-rules.js";
import { removeDataDir } from "../support/drive-server.js";

const hash = (s: string) => new Blake3Hasher().update(s).digestBuffer();

/** The chunk list as 0001 stored it: le64 size + 32-byte hash per chunk. */
function packed(chunks: Array<{ size: number; hash: Buffer }>): Buffer {
  return Buffer.concat(chunks.map((c) => {
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(BigInt(c.size));
    return Buffer.concat([size, c.hash]);
  }));
}

/**
 * Migration 0003 on a database that 0001 and 0002 filled, as a server
 * upgraded in place finds it: old blobs' packed chunk lists become
 * blob_chunks rows, their hashes stay kind 2, open uploads expire.
 */
describe("migration 0003 on a database with version 1 rows", () => {
  let dir: string;
  let stop: () => Promise<void>;
  let db: Db;
  const log = createLogger("warn");
  const chunks = [
    { size: 5 * MiB, hash: hash("a") },
    { size: 6 * MiB, hash: hash("b") },
    { size: 1000, hash: hash("c") },
  ];
  const oldHash = contentHash(chunks);
  const ids: Record<string, number> = {};

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "drive-migrate-"));
    const server = await startEmbeddedPostgres(dir, log);
    stop = () => server.stop();
    // The schema as the last release left it.
    const old = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: server.url, max: 2 }) }) });
    const before = Object.fromEntries(Object.entries(migrations).filter(([name]) => name < "0003"));
    const { error } = await new Migrator({ db: old, provider: { getMigrations: async () => before } }).migrateToLatest();
    if (error) throw error;
    const user = await old.insertInto("users").values({ name: "old", token_id: "t", token_hash: Buffer.alloc(32) }).returning("id").executeTakeFirstOrThrow();
    const ns = await old.insertInto("namespaces").values({ kind: "home", owner_id: user.id }).returning("id").executeTakeFirstOrThrow();
    const blob = await old
      .insertInto("blobs")
      .values({ namespace_id: ns.id, content_hash: oldHash, size: 11 * MiB + 1000, object_key: "ns/1/old", chunks: packed(chunks) })
      .returning("id")
      .executeTakeFirstOrThrow();
    const empty = await old
      .insertInto("blobs")
      .values({ namespace_id: ns.id, content_hash: contentHash([]), size: 0, object_key: null, chunks: Buffer.alloc(0) })
      .returning("id")
      .executeTakeFirstOrThrow();
    const file = await old
      .insertInto("files")
      .values({ namespace_id: ns.id, path: "old.bin", revision: 1, deleted: false, blob_id: blob.id, size: 11 * MiB + 1000, content_hash: oldHash, modified_at: new Date() })
      .returning("id")
      .executeTakeFirstOrThrow();
    await old.insertInto("versions").values({ file_id: file.id, revision: 1, deleted: false, blob_id: blob.id, size: 11 * MiB + 1000, content_hash: oldHash, author_id: user.id }).execute();
    await old.insertInto("journal").values({ namespace_id: ns.id, seq: 1, op: "put", path: "old.bin", file_id: file.id, revision: 1, size: 11 * MiB + 1000, content_hash: oldHash }).execute();
    await old
      .insertInto("uploads")
      .values({
        id: "u1", namespace_id: ns.id, user_id: user.id, path: "open.bin", size: 1000, content_hash: hash("open"), chunks: packed([{ size: 1000, hash: hash("open") }]),
        object_key: "ns/1/u1", store_upload_id: "s1", state: "open", expires_at: new Date(Date.now() + 3_600_000),
      })
      .execute();
    await old.destroy();
    Object.assign(ids, { blob: Number(blob.id), empty: Number(empty.id), ns: Number(ns.id) });

    // The new server starts: its migrations run.
    const opened = await openDatabase({ url: server.url, maxConnections: 2, log });
    db = opened.db;
    const stopServer = stop;
    stop = async () => {
      await opened.close();
      await stopServer();
    };
  });
  afterAll(async () => {
    await stop?.();
    if (dir) await removeDataDir(dir);
  });

  it("moves each old chunk list into blob_chunks, stored raw, with running offsets", async () => {
    const rows = await db.selectFrom("blob_chunks").selectAll().where("blob_id", "=", ids.blob!).orderBy("seq").execute();
    expect(rows.map((r) => ({ ...r, hash: r.hash.toString("hex") }))).toEqual([
      { blob_id: ids.blob, seq: 0, namespace_id: ids.ns, hash: chunks[0]!.hash.toString("hex"), size: 5 * MiB, plain_offset: 0, stored_offset: 0, stored_size: 5 * MiB, codec: 1 },
      { blob_id: ids.blob, seq: 1, namespace_id: ids.ns, hash: chunks[1]!.hash.toString("hex"), size: 6 * MiB, plain_offset: 5 * MiB, stored_offset: 5 * MiB, stored_size: 6 * MiB, codec: 1 },
      { blob_id: ids.blob, seq: 2, namespace_id: ids.ns, hash: chunks[2]!.hash.toString("hex"), size: 1000, plain_offset: 11 * MiB, stored_offset: 11 * MiB, stored_size: 1000, codec: 1 },
    ]);
    expect(await db.selectFrom("blob_chunks").select("seq").where("blob_id", "=", ids.empty!).execute()).toEqual([]);
  });

  it("keeps old blobs' hashes as kind 2, with their stored size and chunk count, and drops the packed lists", async () => {
    const blobs = await db.selectFrom("blobs").select(["id", "hash_kind", "stored_size", "chunk_count", "chunks", "content_hash"]).orderBy("id").execute();
    expect(blobs.map((b) => ({ ...b, content_hash: undefined }))).toEqual([
      { id: ids.blob, hash_kind: 2, stored_size: 11 * MiB + 1000, chunk_count: 3, chunks: null, content_hash: undefined },
      { id: ids.empty, hash_kind: 2, stored_size: 0, chunk_count: 0, chunks: null, content_hash: undefined },
    ]);
    expect(blobs[0]!.content_hash.equals(oldHash)).toBe(true);
  });

  it("marks files, versions and journal entries as kind 2", async () => {
    for (const table of ["files", "versions", "journal"] as const) {
      const rows = await db.selectFrom(table).select("content_hash_kind").execute();
      expect(rows, table).toEqual([{ content_hash_kind: 2 }]);
    }
  });

  it("expires uploads the old client left open, so the sweeper aborts them", async () => {
    const row = await db.selectFrom("uploads").select(["expires_at", "chunk_count", "planned"]).where("id", "=", "u1").executeTakeFirstOrThrow();
    expect(row.expires_at.getTime()).toBeLessThanOrEqual(Date.now());
    expect(row).toMatchObject({ chunk_count: 0, planned: false });
  });
});
