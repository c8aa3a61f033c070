import type { Change } from "../../gen/drive/v1/feed_pb.js";

/**
 * Following the change feed from the client (cli/feed/): contract between
 * cli/feed/ (which implements it over FeedService.WatchChanges) and
 * `drive changes --follow`, cli/watch/ (which use it).
 */
export interface FollowOptions {
  /** Start after this cursor; empty: from the oldest change kept. */
  cursor: string;
  prefix?: string;
  signal: AbortSignal;
  /** Heartbeat interval asked of the server, seconds. */
  heartbeatSeconds?: number;
}

/**
 * One step of the feed: changes in cursor order (possibly none, for a
 * heartbeat), the cursor after them, and whether the stream is live. A
 * follower reconnects by itself (Unavailable, a lost connection, a server
 * restart, SLOW_CONSUMER) from the last cursor it yielded, with backoff, so
 * the consumer sees every change once. A CURSOR_RESET ends the iteration
 * with FeedReset: the consumer lists again and follows from the new cursor.
 */
export interface FeedStep {
  changes: Change[];
  cursor: string;
  caughtUp: boolean;
}

export class FeedReset extends Error {
  constructor(message: string) {
    super(message);
  }
}

export type FollowChanges = (client: import("../rpc/drive-client.js").DriveClient, opts: FollowOptions) => AsyncIterable<FeedStep>;
