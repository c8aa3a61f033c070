import pg from "pg";
import { JOURNAL_CHANNEL } from "../journal/append-entry.js";
import type { Logger } from "../log.js";

export interface JournalListenerOptions {
  url: string;
  log: Logger;
  /** A notification on JOURNAL_CHANNEL: its payload, the namespace id, as a number; NaN for a payload that is not one. */
  onWake(namespaceId: number): void;
  /** The connection (re)opened and LISTENs: a notification sent while it was down is lost, so wake everything. */
  onListening(): void;
}

export interface JournalListener {
  close(): Promise<void>;
  /** The server pid of the listening connection, for tests that cut it; null while it is down. */
  backendPid(): number | null;
}

const APPLICATION_NAME = "drive-notify";

/**
 * One LISTEN connection to PostgreSQL, kept open: when the database drops
 * it (a restart, a failover, pg_terminate_backend), it reconnects with
 * backoff, then reports onListening. It is a wake-up line only: nothing
 * read from it is taken as a change.
 */
export function startJournalListener(opts: JournalListenerOptions): JournalListener {
  let closed = false;
  let client: pg.Client | null = null;
  let pid: number | null = null;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;

  const connect = async () => {
    timer = undefined;
    if (closed) return;
    const c = new pg.Client({ connectionString: opts.url, application_name: APPLICATION_NAME, keepAlive: true });
    let dropped = false;
    const drop = (err?: Error) => {
      if (dropped) return;
      dropped = true;
      pid = null;
      if (client === c) client = null;
      void c.end().catch(() => {});
      if (closed) return;
      opts.log.warn("journal listener lost its connection; reconnecting", { err: err?.message });
      schedule();
    };
    c.on("error", drop);
    c.on("end", () => drop());
    c.on("notification", (n) => {
      if (n.channel === JOURNAL_CHANNEL) opts.onWake(Number(n.payload));
    });
    try {
      await c.connect();
      await c.query(`listen ${JOURNAL_CHANNEL}`);
      const { rows } = await c.query<{ pid: number }>("select pg_backend_pid() as pid");
      if (closed || dropped) return void c.end().catch(() => {});
      client = c;
      pid = rows[0]!.pid;
      if (failures > 0) opts.log.info("journal listener reconnected");
      failures = 0;
      opts.onListening();
    } catch (err) {
      drop(err as Error);
    }
  };
  const schedule = () => {
    if (closed || timer) return;
    const delay = Math.min(5000, 100 * 2 ** failures++) * (0.5 + Math.random() / 2);
    timer = setTimeout(() => void connect(), delay);
    timer.unref();
  };

  void connect();
  return {
    backendPid: () => pid,
    async close() {
      closed = true;
      clearTimeout(timer);
      const c = client;
      client = null;
      await c?.end().catch(() => {});
    },
  };
}
