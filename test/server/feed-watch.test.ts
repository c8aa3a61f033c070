import { Code, ConnectError, createClient, createRouterTransport, type Interceptor } from "@connectrpc/connect";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FeedService, type WatchChangesResponse } from "../../gen/drive/v1/feed_pb.js";
import { ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import { errorInfoOf } from "../../cli/errors.js";
import { JournalHub } from "../../server/notify/journal-hub.js";
import { kCaller } from "../../server/rpc/caller.js";
import { errorInterceptor } from "../../server/rpc/error-interceptor.js";
import { feedService } from "../../server/rpc/feed-service.js";
import { startRpcHarness, type RpcHarness } from "./rpc-harness.js";
import { appendEntries, caughtUp, changesOf, failure, putEmpty, readUntil, until } from "./feed-support.js";

describe("WatchChanges: backlog, live changes, heartbeats, one query per wake-up", () => {
  let h: RpcHarness;
  beforeAll(async () => {
    h = await startRpcHarness();
  });
  afterAll(() => h?.close());

  /** A feed client whose service runs on another hub over the same database (a tight queue, its own log). */
  function feedOn(hub: JournalHub, logs: string[] = []) {
    const log = { ...h.deps.log };
    for (const level of ["debug", "info", "warn", "error"] as const) log[level] = (msg: string, fields?: Record<string, unknown>) => void logs.push(JSON.stringify({ level, msg, ...fields }, (_k, v) => (v instanceof Error ? `${v.name}: ${v.message}` : v)));
    const asCaller: Interceptor = (next) => (req) => {
      req.contextValues.set(kCaller, h.caller);
      return next(req);
    };
    const transport = createRouterTransport((r) => r.service(FeedService, feedService({ ...h.deps, hub, log })), {
      router: { interceptors: [errorInterceptor(log), asCaller] },
    });
    return createClient(FeedService, transport);
  }

  it("sends the backlog, then caught_up, then each new commit, then heartbeats with the cursor", async () => {
    const start = (await h.feed.getCursor({})).cursor;
    await putEmpty(h, "w/backlog-1");
    await putEmpty(h, "w/backlog-2");
    const abort = new AbortController();
    const stream = h.feed.watchChanges({ cursor: start, heartbeatSeconds: 1 }, { signal: abort.signal })[Symbol.asyncIterator]();
    const events = await readUntil(stream, caughtUp);
    expect(changesOf(events).map((c) => c.file?.path)).toEqual(["w/backlog-1", "w/backlog-2"]);
    expect(events.at(-1)!.event.case).toBe("heartbeat");
    await putEmpty(h, "w/live");
    await readUntil(stream, (e) => changesOf(e).length === 3, events);
    const live = changesOf(events)[2]!;
    expect(live.file?.path).toBe("w/live");
    // A quiet stream: a heartbeat, not caught_up, at the live change's position.
    const quiet = await readUntil(stream, (e) => e.length > 0 && e.at(-1)!.event.case === "heartbeat");
    expect(quiet.at(-1)!.event.value).toMatchObject({ cursor: live.cursor, caughtUp: false });
    abort.abort();
    await stream.return?.();
    await until(() => h.deps.hub.attachedWatchers() === 0, "the stream to leave the hub");
  });

  it("filters live changes by prefix and moves the heartbeat cursor past the skipped ones", async () => {
    const abort = new AbortController();
    const stream = h.feed.watchChanges({ cursor: "", prefix: "keep/", heartbeatSeconds: 1 }, { signal: abort.signal })[Symbol.asyncIterator]();
    await readUntil(stream, caughtUp);
    await putEmpty(h, "skip/one");
    await appendEntries(h, [{ op: "move", path: "else/x", from_path: "keep/x", from_revision: 1 }]);
    await putEmpty(h, "skip/two");
    const events = await readUntil(stream, (e) => e.some((x) => x.event.case === "heartbeat"));
    expect(changesOf(events).map((c) => [c.file?.path, c.fromPath])).toEqual([["else/x", "keep/x"]]);
    const hb = events.find((x) => x.event.case === "heartbeat")!.event.value as { cursor: string };
    expect(hb.cursor).toBe((await h.feed.getCursor({})).cursor);
    abort.abort();
  });

  it("fans one commit out to 50 watchers with one journal query", async () => {
    const aborts: AbortController[] = [];
    const streams = Array.from({ length: 50 }, () => {
      const a = new AbortController();
      aborts.push(a);
      return h.feed.watchChanges({ cursor: "", heartbeatSeconds: 300 }, { signal: a.signal })[Symbol.asyncIterator]();
    });
    await Promise.all(streams.map((s) => readUntil(s, caughtUp)));
    await until(() => !h.deps.hub.busy(), "the hub to settle");
    const before = h.deps.hub.stats.journalQueries;
    await putEmpty(h, "fan/out");
    const got = await Promise.all(streams.map((s) => readUntil(s, (e) => changesOf(e).length === 1)));
    expect(got.every((e) => changesOf(e)[0]!.file?.path === "fan/out")).toBe(true);
    await until(() => !h.deps.hub.busy(), "the hub to settle");
    expect(h.deps.hub.stats.journalQueries - before).toBe(1);
    for (const a of aborts) a.abort();
    await Promise.all(streams.map((s) => s.return?.()));
    await until(() => h.deps.hub.attachedWatchers() === 0, "every stream to leave");
  });

  it("reconnects its LISTEN connection when the database cuts it, and catches what committed meanwhile", async () => {
    const abort = new AbortController();
    const stream = h.feed.watchChanges({ cursor: (await h.feed.getCursor({})).cursor }, { signal: abort.signal })[Symbol.asyncIterator]();
    await readUntil(stream, caughtUp);
    await until(() => h.deps.hub.listenerPid() !== null, "the listener");
    const pid = h.deps.hub.listenerPid()!;
    await sql`select pg_terminate_backend(${pid})`.execute(h.deps.db);
    await putEmpty(h, "while/down");
    const events = await readUntil(stream, (e) => changesOf(e).length === 1);
    expect(changesOf(events)[0]!.file?.path).toBe("while/down");
    await until(() => h.deps.hub.listenerPid() !== null && h.deps.hub.listenerPid() !== pid, "a new listener");
    abort.abort();
  });

  it("cuts a stream that lets its queue overflow with SLOW_CONSUMER; resuming from its cursor loses nothing", async () => {
    const tight = new JournalHub({ db: h.deps.db, log: h.deps.log, url: null, maxQueuedPerStream: 10 });
    try {
      const feed = feedOn(tight);
      const stream = feed.watchChanges({ cursor: (await h.feed.getCursor({})).cursor })[Symbol.asyncIterator]();
      const events = await readUntil(stream, caughtUp);
      const last = (events.at(-1)!.event.value as { cursor: string }).cursor;
      await appendEntries(h, Array.from({ length: 25 }, (_, i) => ({ path: `burst/${i}` })));
      tight.wake(h.caller.namespaceId); // this hub has no LISTEN connection
      const err = await failure(() => readUntil(stream, () => false, events));
      expect(err).toMatchObject({ code: Code.ResourceExhausted, reason: "SLOW_CONSUMER" });
      const resumed = await readUntil(h.feed.watchChanges({ cursor: last })[Symbol.asyncIterator](), caughtUp);
      expect(changesOf(resumed).map((c) => c.file?.path)).toEqual(Array.from({ length: 25 }, (_, i) => `burst/${i}`));
    } finally {
      await tight.close();
    }
  });

  it("maps errors raised while the stream runs like unary ones: typed for ours, a bare Internal for the rest", async () => {
    const logs: string[] = [];
    const feed = feedOn(h.deps.hub, logs);
    const bad = await failure(() => readUntil(feed.watchChanges({ cursor: "garbage!" })[Symbol.asyncIterator](), () => false));
    expect(bad.code).toBe(Code.InvalidArgument);
    const range = await failure(() => readUntil(feed.watchChanges({ heartbeatSeconds: 301 })[Symbol.asyncIterator](), () => false));
    expect(range.code).toBe(Code.InvalidArgument);
    // A real failure inside the stream: the journal is gone.
    await sql`alter table journal rename to journal_hidden`.execute(h.deps.db);
    let err: unknown;
    try {
      await readUntil(feed.watchChanges({})[Symbol.asyncIterator](), () => false);
    } catch (e) {
      err = e;
    } finally {
      await sql`alter table journal_hidden rename to journal`.execute(h.deps.db);
    }
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.Internal);
    expect((err as ConnectError).rawMessage).toBe("internal error");
    expect(errorInfoOf(err)?.reason ?? ErrorReason.UNSPECIFIED).toBe(ErrorReason.UNSPECIFIED);
    expect(JSON.stringify((err as ConnectError).metadata) + (err as ConnectError).message).not.toMatch(/journal/);
    // The cause is in the log, once per stream, with the stream's end.
    const ends = logs.filter((l) => l.includes("FeedService/WatchChanges"));
    expect(ends).toHaveLength(3);
    expect(ends[2]).toMatch(/"code":"Internal".*journal/);
  });

  it("ends every stream with Unavailable when the hub closes (server shutdown)", async () => {
    const hub = new JournalHub({ db: h.deps.db, log: h.deps.log, url: null });
    const feed = feedOn(hub);
    const stream = feed.watchChanges({})[Symbol.asyncIterator]();
    await readUntil(stream, caughtUp);
    await hub.close();
    const err = await failure(() => readUntil(stream, () => false));
    expect(err.code).toBe(Code.Unavailable);
    expect((await failure(() => readUntil(feed.watchChanges({})[Symbol.asyncIterator](), () => false))).code).toBe(Code.Unavailable);
  });
});

export type { WatchChangesResponse };
