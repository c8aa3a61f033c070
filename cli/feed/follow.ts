import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import { errorInfoOf } from "../errors.js";
import { backoff, isRetryable, sleep } from "../rpc/retry.js";
import { FeedReset, type FeedStep, type FollowChanges } from "./types.js";

/** Reconnection delays: from 200 ms, doubling, to at most 10 s, for as long as the follower runs. */
const BACKOFF = { baseDelayMs: 200, maxDelayMs: 10_000 };

/**
 * Follows the feed over WatchChanges for as long as the signal lets it
 * (cli/feed/types.ts has the contract). Every step's cursor is where the
 * next connection starts, so a reconnect neither repeats nor loses a
 * change: a change is yielded with its own cursor, a heartbeat with the
 * stream's. A stream that ends, breaks, or is cut (a restart, a lost
 * connection, SLOW_CONSUMER) is opened again from there, with backoff that
 * resets once a stream delivers. CURSOR_RESET ends with FeedReset; any other
 * permanent error (a bad cursor, authentication) is thrown as it came.
 */
export const followChanges: FollowChanges = async function* (client, opts) {
  let cursor = opts.cursor;
  let failures = 0;
  while (!opts.signal.aborted) {
    let caughtUp = false;
    try {
      const stream = client.feed.watchChanges({ cursor, prefix: opts.prefix ?? "", heartbeatSeconds: opts.heartbeatSeconds ?? 0 }, { signal: opts.signal });
      for await (const res of stream) {
        failures = 0;
        let step: FeedStep;
        if (res.event.case === "change") {
          step = { changes: [res.event.value], cursor: res.event.value.cursor, caughtUp };
        } else if (res.event.case === "heartbeat") {
          caughtUp ||= res.event.value.caughtUp;
          step = { changes: [], cursor: res.event.value.cursor, caughtUp };
        } else {
          continue; // an event this client does not know: skip it, the next one carries a cursor
        }
        cursor = step.cursor;
        yield step;
      }
      // The server ended the stream (it should not, but a proxy may): open it again.
    } catch (err) {
      if (opts.signal.aborted) return;
      if (errorInfoOf(err)?.reason === ErrorReason.CURSOR_RESET) throw new FeedReset((err as ConnectError).rawMessage);
      if (!worthReconnecting(err)) throw err;
    }
    try {
      await sleep(backoff(++failures, BACKOFF), opts.signal);
    } catch {
      return;
    }
  }
};

/** What a new connection may cure: retryable codes, SLOW_CONSUMER, and a connection the server dropped (reported as Canceled). */
function worthReconnecting(err: unknown): boolean {
  if (isRetryable(err)) return true;
  return err instanceof ConnectError && (err.code === Code.Canceled || err.code === Code.Internal || err.code === Code.Unknown);
}
