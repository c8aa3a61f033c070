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

export interface OpenedDatabase {
  db: Db;
  /** Ends the pool and waits until every connection has closed. */
  close(): Promise<void>;
}

/** Opens a pool and brings the schema up to date. */
export async function openDatabase(opts: OpenDatabaseOptions): Promise<OpenedDatabase> {
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
  return { db, close: () => closePool(db, pool) };
}

/**
 * pg-pool's end() resolves once it has asked its idle connections to close,
 * not once they have: a PostgreSQL stopped right after (the embedded one,
 * at shutdown) then cuts them, and each logs a failure. Wait for them.
 */
async function closePool(db: Db, pool: pg.Pool): Promise<void> {
  let open = pool.totalCount;
  const closed = new Promise<void>((resolve) => {
    if (open === 0) return resolve();
    pool.on("remove", () => --open <= 0 && resolve());
  });
  await db.destroy();
  await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
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
