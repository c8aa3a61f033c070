import { DriveError } from "../errors.js";
import { changeMapper, readJournal } from "../journal/read-changes.js";
import type { Logger } from "../log.js";
import type { Db } from "../metadata/database.js";
import { startJournalListener, type JournalListener } from "./journal-listener.js";
import { Watcher } from "./watcher.js";

export interface JournalHubOptions {
  db: Db;
  log: Logger;
  /** PostgreSQL URL for the LISTEN connection; null: no listener (wakes come only from wake() and the poll). */
  url: string | null;
  /** Changes one stream may have queued before it is cut off with SLOW_CONSUMER. Default 4,096. */
  maxQueuedPerStream?: number;
  /** Entries per journal read. Default 1,000. */
  batch?: number;
  /** Every namespace with watchers is read this often even without a notification, in case one was lost. Default 30 s. */
  pollMs?: number;
}

/** The watchers of one namespace and where the hub has read its journal to. */
interface NamespaceFeed {
  readonly id: number;
  /** Every entry up to here was read and handed to the watchers attached then. */
  tail: number;
  readonly watchers: Set<Watcher>;
  reading: boolean;
  /** A wake came while reading: read again after. */
  again: boolean;
}

/** Counters for tests and the benchmark. */
export interface HubStats {
  /** Journal queries the hub made. */
  journalQueries: number;
  /** Wake-ups handled (notifications, polls, reconnects), before folding. */
  wakes: number;
}

/**
 * Fans the journal out to WatchChanges streams on this instance. One LISTEN
 * connection wakes it with a namespace id; it then reads that namespace's
 * journal once, from the tail it has reached, and hands the entries to every
 * watcher standing at that tail: one query per namespace wake-up, however
 * many watchers. A watcher behind the tail reads on its own until it
 * reaches it (join). The notification is never taken as the change.
 */
export class JournalHub {
  private readonly feeds = new Map<number, NamespaceFeed>();
  private readonly listener: JournalListener | null;
  private readonly poll: NodeJS.Timeout;
  private closed = false;
  readonly stats: HubStats = { journalQueries: 0, wakes: 0 };
  readonly maxQueuedPerStream: number;
  private readonly batch: number;

  constructor(private readonly opts: JournalHubOptions) {
    this.maxQueuedPerStream = opts.maxQueuedPerStream ?? 4096;
    this.batch = opts.batch ?? 1000;
    this.listener = opts.url
      ? startJournalListener({
          url: opts.url,
          log: opts.log,
          onWake: (id) => this.wake(id),
          onListening: () => this.wakeAll(),
        })
      : null;
    this.poll = setInterval(() => this.wakeAll(), opts.pollMs ?? 30_000);
    this.poll.unref();
  }

  /** A seat for a stream, detached until it joins. */
  watcher(namespaceId: number, userId: number, prefix: string, seq: number): Watcher {
    if (this.closed) throw shuttingDown();
    return new Watcher(namespaceId, userId, prefix, seq, this.maxQueuedPerStream);
  }

  /**
   * Attaches a watcher that has read the journal up to its seq, when that
   * is at or past the tail: the hub takes it from there. False when the
   * tail has moved past it: it reads on its own, then joins again.
   */
  join(w: Watcher): boolean {
    if (this.closed) throw shuttingDown();
    let feed = this.feeds.get(w.namespaceId);
    const fresh = !feed;
    if (!feed) {
      feed = { id: w.namespaceId, tail: w.seq, watchers: new Set(), reading: false, again: false };
      this.feeds.set(feed.id, feed);
    }
    if (w.seq < feed.tail) return false;
    feed.watchers.add(w);
    w.attached = true;
    // A notification may have come before the feed existed, or before this watcher's read: look once.
    if (fresh || w.seq > feed.tail) this.wake(feed.id);
    return true;
  }

  leave(w: Watcher): void {
    const feed = this.feeds.get(w.namespaceId);
    if (!w.attached || !feed?.watchers.delete(w)) return;
    w.attached = false;
    if (feed.watchers.size === 0 && !feed.reading) this.feeds.delete(feed.id);
  }

  /** Something committed in this namespace, maybe: read its journal from the tail. */
  wake(namespaceId: number): void {
    this.stats.wakes++;
    const feed = this.feeds.get(namespaceId);
    if (!feed || this.closed) return;
    if (feed.reading) {
      feed.again = true;
      return;
    }
    feed.reading = true;
    void this.read(feed);
  }

  wakeAll(): void {
    for (const id of this.feeds.keys()) this.wake(id);
  }

  /** How far the hub has read a namespace's journal; undefined when no stream watches it here. */
  tailOf(namespaceId: number): number | undefined {
    return this.closed ? undefined : this.feeds.get(namespaceId)?.tail;
  }

  /** True while a journal read for watchers is in flight (tests wait for it to settle). */
  busy(): boolean {
    for (const f of this.feeds.values()) if (f.reading) return true;
    return false;
  }

  /** Streams attached at a tail now. */
  attachedWatchers(): number {
    let n = 0;
    for (const f of this.feeds.values()) n += f.watchers.size;
    return n;
  }

  /** The LISTEN connection's server pid (tests cut it); null while down or without one. */
  listenerPid(): number | null {
    return this.listener?.backendPid() ?? null;
  }

  /** Ends every stream (Unavailable: reconnect elsewhere or later) and the LISTEN connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.poll);
    for (const feed of this.feeds.values()) for (const w of feed.watchers) w.fail(shuttingDown());
    this.feeds.clear();
    await this.listener?.close();
  }

  private async read(feed: NamespaceFeed): Promise<void> {
    let failures = 0;
    try {
      do {
        feed.again = false;
        if (feed.watchers.size === 0 || this.closed) break;
        try {
          this.stats.journalQueries++;
          const page = await readJournal(this.opts.db, feed.id, feed.tail, { limit: this.batch });
          failures = 0;
          this.opts.log.debug("journal read for watchers", { namespace: feed.id, entries: page.rows.length, watchers: feed.watchers.size });
          this.fanOut(feed, page.rows, page.rows.length === this.batch ? page.rows[page.rows.length - 1]!.seq : page.journalSeq);
          if (page.rows.length === this.batch) feed.again = true;
        } catch (err) {
          if (err instanceof DriveError) {
            // CURSOR_RESET: the sweep trimmed past the tail. Every watcher here must list again.
            for (const w of feed.watchers) {
              w.fail(err);
              w.attached = false;
            }
            feed.watchers.clear();
            break;
          }
          // The database is away: the watchers stay, their heartbeats carry the cursor they reached, and we try again.
          this.opts.log.warn("journal read for watchers failed; retrying", { namespace: feed.id, err: (err as Error).message });
          await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** failures++)).unref());
          feed.again = true;
        }
      } while (feed.again && !this.closed);
    } finally {
      feed.reading = false;
      if (feed.watchers.size === 0 && this.feeds.get(feed.id) === feed) this.feeds.delete(feed.id);
    }
  }

  private fanOut(feed: NamespaceFeed, rows: Parameters<ReturnType<typeof changeMapper>>[0][], newTail: number): void {
    if (newTail <= feed.tail && rows.length === 0) return;
    // Changes are mapped once per user (their cursors name the user), shared by every watcher.
    const mapped = new Map<number, ReturnType<ReturnType<typeof changeMapper>>[]>();
    for (const w of feed.watchers) {
      let changes = mapped.get(w.userId);
      if (!changes) mapped.set(w.userId, (changes = rows.map(changeMapper(w.userId, feed.id))));
      w.deliver({ rows, changes }, newTail);
    }
    feed.tail = Math.max(feed.tail, newTail);
  }
}

const shuttingDown = () => new DriveError("unavailable", "the server is shutting down; watch again from the last cursor received");
