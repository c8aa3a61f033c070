import { Kysely, Migrator, PostgresDialect, type PostgresPool, type PostgresPoolClient } from "kysely";
import pg from "pg";
import type { Logger } from "../log.js";
import { DependencyUnavailableError, withStartupDeadline } from "../startup-error.js";
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
  /**
   * How long PostgreSQL gets to answer at start (connect, then migrations),
   * and to accept each new connection later. Default 30 s.
   */
  timeoutMs?: number;
}

export interface OpenedDatabase {
  db: Db;
  /** Ends the pool and waits until every connection has closed. */
  close(): Promise<void>;
}

/**
 * Opens a pool and brings the schema up to date. A PostgreSQL that cannot be
 * reached, or accepts connections and never answers, fails this within
 * `timeoutMs` with DependencyUnavailableError, naming where it was looked for.
 */
export async function openDatabase(opts: OpenDatabaseOptions): Promise<OpenedDatabase> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.maxConnections,
    types,
    application_name: "drive-server",
    connectionTimeoutMillis: timeoutMs,
  });
  pool.on("error", (err) => opts.log.warn("idle database connection failed", { err }));
  // A client in use whose connection dies emits 'error' too, and pg-pool listens only on idle ones:
  // unheard, it would end the process. Its query fails on its own, and the pool drops it on release.
  pool.on("connect", (client) => client.on("error", (err) => opts.log.warn("database connection lost", { err: err.message })));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new TaggingPool(pool) }) });
  const where = `PostgreSQL at ${describeUrl(opts.url)}`;
  let step = "connect";
  try {
    await withStartupDeadline(
      where,
      timeoutMs,
      () => step,
      async () => {
        await pool.query("select 1").catch((err: unknown) => {
          if (!isConnectionFailure(err)) throw err;
          const message = /timeout/i.test((err as Error).message)
            ? `${where} did not answer within ${timeoutMs / 1000} s (connect); check it, or raise --startup-timeout`
            : `${where} could not be reached (${(err as Error).message})`;
          throw new DependencyUnavailableError(message, { cause: err });
        });
        step = "migrations";
        await migrate(db, opts.log);
      },
      () => void db.destroy().catch(() => {}),
    );
  } catch (err) {
    void db.destroy().catch(() => {});
    throw err;
  }
  return { db, close: () => closePool(db, pool) };
}

/** host:port/database of a PostgreSQL URL, without its credentials, for messages. */
function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || "localhost"}:${u.port || "5432"}${u.pathname}`;
  } catch {
    return "the --database-url";
  }
}

/** SQLSTATE connection_failure: the error interceptor answers it with Unavailable, as it does 08xxx from PostgreSQL itself. */
const CONNECTION_FAILURE = "08006";

/**
 * pg reports a lost or refused connection as a plain Error with no SQLSTATE
 * ("Connection terminated unexpectedly", "timeout exceeded when trying to
 * connect"), or an errno. Both mean PostgreSQL is unreachable, not that the
 * query was wrong.
 */
function isConnectionFailure(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === "string") return /^(08|57P0|E[A-Z]+$)/.test(code);
  return /Connection terminated|timeout exceeded when trying to connect|timeout expired|not queryable|connection error/i.test((err as Error)?.message ?? "");
}

class DatabaseConnectionError extends Error {
  override readonly name = "DatabaseConnectionError";
  readonly code = CONNECTION_FAILURE;
}

function tag(err: unknown): unknown {
  const code = (err as { code?: unknown })?.code;
  if (!isConnectionFailure(err) || (typeof code === "string" && /^(08|57P0)/.test(code))) return err;
  return new DatabaseConnectionError(`PostgreSQL connection failed: ${(err as Error).message}`, { cause: err });
}

/** The pool as kysely sees it, with connection failures given a SQLSTATE so they map to Unavailable. */
class TaggingPool implements PostgresPool {
  constructor(private readonly pool: pg.Pool) {}
  async connect(): Promise<PostgresPoolClient> {
    const client = await this.pool.connect().catch((err: unknown) => {
      throw tag(err);
    });
    return {
      query: ((...args: unknown[]) => {
        const result = (client.query as (...a: unknown[]) => unknown)(...args);
        if (result instanceof Promise) {
          return result.catch((err: unknown) => {
            throw tag(err);
          });
        }
        return result; // a cursor
      }) as PostgresPoolClient["query"],
      release: (destroy?: boolean) => client.release(destroy),
    };
  }
  end(): Promise<void> {
    return this.pool.end();
  }
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
