import type { ServiceImpl } from "@connectrpc/connect";
import { FeedService } from "../../gen/drive/v1/feed_pb.js";
import type { Deps } from "../deps.js";
import { invalid } from "../errors.js";
import { cursorAt, decodeCursor, encodeCursor } from "../journal/cursor.js";
import { readChanges } from "../journal/read-changes.js";
import { watchStream } from "../notify/watch-stream.js";
import { callerOf } from "./caller.js";
import { checkPrefix, MAX_PAGE_SIZE } from "./request-limits.js";

const DEFAULT_HEARTBEAT_SECONDS = 15;

/** FeedService (proto/drive/v1/feed.proto): the change journal, paged and streamed. */
export function feedService(deps: Deps): ServiceImpl<typeof FeedService> {
  return {
    async getCursor(_req, ctx) {
      const caller = callerOf(ctx);
      const ns = await deps.db.selectFrom("namespaces").select("journal_seq").where("id", "=", caller.namespaceId).executeTakeFirstOrThrow();
      return { cursor: cursorAt(caller.user.id, caller.namespaceId, ns.journal_seq) };
    },

    async listChanges(req, ctx) {
      const caller = callerOf(ctx);
      if (req.limit < 0) throw invalid("limit must not be negative");
      checkPrefix(req.prefix);
      const position = decodeCursor(req.cursor, caller.user.id);
      const limit = req.limit === 0 || req.limit > MAX_PAGE_SIZE ? MAX_PAGE_SIZE : req.limit;
      const page = await readChanges(deps.db, { userId: caller.user.id, namespaceId: caller.namespaceId, position, limit, prefix: req.prefix });
      return { changes: page.changes, cursor: encodeCursor(page.position), hasMore: page.hasMore };
    },

    async *watchChanges(req, ctx) {
      const caller = callerOf(ctx);
      checkPrefix(req.prefix);
      const position = decodeCursor(req.cursor, caller.user.id);
      const seconds = req.heartbeatSeconds === 0 ? DEFAULT_HEARTBEAT_SECONDS : req.heartbeatSeconds;
      if (seconds < 1 || seconds > 300) throw invalid("heartbeat_seconds must be between 1 and 300, or 0 for the default");
      yield* watchStream(deps.db, deps.hub, {
        userId: caller.user.id,
        namespaceId: caller.namespaceId,
        position,
        prefix: req.prefix,
        heartbeatMs: seconds * 1000,
        signal: ctx.signal,
      });
    },
  };
}
