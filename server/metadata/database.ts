import { Kysely, Migrator, PostgresDialect } from "kysely";
import pg from "pg";
import type { Logger } from "../log.js";
import { migrations } from "./migrations/index.js";
import type { Database } from "./schema.js";

export type Db = Kysely<Database>;

// int8 and numeric come back as strings by default; every bigint we store
// (ids, sizes up to 50 TiB, sequence numbers) is well inside 2^53.
const INT8_OID = 20;
const types = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (oid === INT8_OID && format !== "binary") return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format as "text");
  },
};

export interface OpenDatabaseOptions {
  url: string;
  maxConnections: number;
  log: Logger;
}

/** Opens a pool and brings the schema up to date. */
export async function openDatabase(opts: OpenDatabaseOptions): Promise<{ db: Db; pool: pg.Pool }> {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.maxConnections,
    types,
    application_name: "drive-server",
  });
  pool.on("error", (err) => opts.log.warn("idle database connection failed", { err }));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrate(db, opts.log);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return { db, pool };
}

async function migrate(db: Db, log: Logger): Promise<void> {
  // Several instances may start at once; kysely's migrator takes its own lock.
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results } = await migrator.migrateToLatest();
  for (const r of results ?? []) {
    if (r.status === "Success") log.info("migration applied", { migration: r.migrationName });
    if (r.status === "Error") log.error("migration failed", { migration: r.migrationName });
  }
  if (error) throw error;
}
