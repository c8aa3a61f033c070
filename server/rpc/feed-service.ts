import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { FeedService } from "../../gen/drive/v1/feed_pb.js";
import type { Deps } from "../deps.js";

const unimplemented = () => Promise.reject(new ConnectError("not implemented yet", Code.Unimplemented));

/** FeedService (proto/drive/v1/feed.proto): the change journal, paged and streamed. */
export function feedService(_deps: Deps): ServiceImpl<typeof FeedService> {
  return {
    getCursor: unimplemented,
    listChanges: unimplemented,
    // eslint-disable-next-line require-yield
    async *watchChanges() {
      throw new ConnectError("not implemented yet", Code.Unimplemented);
    },
  };
}
