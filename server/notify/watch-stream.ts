import type { MessageInitShape } from "@bufbuild/protobuf";
import type { WatchChangesResponseSchema } from "../../gen/drive/v1/feed_pb.js";
import { cursorAt, type FeedPosition } from "../journal/cursor.js";
import { changeMapper, readJournal, startOf } from "../journal/read-changes.js";
import type { Db } from "../metadata/database.js";
import type { JournalHub } from "./journal-hub.js";

type Event = MessageInitShape<typeof WatchChangesResponseSchema>;

/** Entries per backlog read. */
const PAGE = 1000;

export interface WatchOptions {
  userId: number;
  namespaceId: number;
  position: FeedPosition | null;
  prefix: string;
  heartbeatMs: number;
  /** The client went away, or the call ended: the stream stops at once. */
  signal: AbortSignal;
}

/**
 * One WatchChanges stream: the backlog after the cursor, read by this stream
 * a page at a time, then a caught_up heartbeat, then live changes from the
 * hub, with a heartbeat after every quiet `heartbeatMs`. It reads on its
 * own until it stands at the hub's tail, so it neither misses nor repeats
 * an entry between the two. Its memory is one page while it catches up and
 * the hub's bounded queue after.
 */
export async function* watchStream(db: Db, hub: JournalHub, opts: WatchOptions): AsyncGenerator<Event> {
  const toChange = changeMapper(opts.userId, opts.namespaceId);
  let seq = startOf(opts.position, opts.namespaceId);
  let watcher: ReturnType<JournalHub["watcher"]> | undefined;
  try {
    const seat = (at: number) => {
      if (!watcher) {
        watcher = hub.watcher(opts.namespaceId, opts.userId, opts.prefix, at);
        // connect stops reading a stream whose client went away without ending this generator: leave at once.
        const w = watcher;
        opts.signal.addEventListener("abort", () => hub.leave(w), { once: true });
      }
      watcher.seq = at;
      return watcher;
    };
    for (;;) {
      if (opts.signal.aborted) return;
      // Already at the hub's tail (a reconnect after a blip, a restart of the client): nothing to read first.
      if (seq !== null && hub.tailOf(opts.namespaceId) === seq && hub.join(seat(seq))) break;
      const page = await readJournal(db, opts.namespaceId, seq, { limit: PAGE, prefix: opts.prefix });
      for (const row of page.rows) yield { event: { case: "change", value: toChange(row) } };
      const full = page.rows.length === PAGE;
      seq = full ? page.rows[PAGE - 1]!.seq : page.journalSeq;
      if (full) continue;
      if (opts.signal.aborted) return;
      if (hub.join(seat(seq))) break;
    }
    if (!watcher) return;
    yield heartbeat(opts, seq!, true);
    while (!opts.signal.aborted) {
      const step = await watcher.next(opts.heartbeatMs, opts.signal);
      if (opts.signal.aborted) return;
      if (!step) {
        yield heartbeat(opts, watcher.seq, false);
        continue;
      }
      for (const change of step.changes) yield { event: { case: "change", value: change } };
    }
  } finally {
    if (watcher) hub.leave(watcher);
  }
}

function heartbeat(opts: WatchOptions, seq: number, caughtUp: boolean): Event {
  return { event: { case: "heartbeat", value: { cursor: cursorAt(opts.userId, opts.namespaceId, seq), caughtUp } } };
}
