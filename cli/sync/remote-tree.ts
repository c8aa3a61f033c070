import { ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import type { FileInfo } from "../../gen/drive/v1/types_pb.js";
import { checkRemotePath } from "../../shared/rules/remote-path.js";
import { hasReason } from "../errors.js";
import type { DriveClient } from "../rpc/drive-client.js";
import { listRemote, remotePrefix } from "../tree/remote-list.js";
import { FeedSteps } from "./feed-steps.js";
import { nodeOf, parentOf, sameNode } from "./remote-view.js";
import type { NodeKind, RefreshRemote, RemoteNode, SyncState } from "./types.js";

/**
 * Brings Remote up to the server (types.ts, RefreshRemote): the feed from
 * the state's cursor, a page at a time, each page's changes and the cursor
 * after it in one transaction; or, with no cursor or on CURSOR_RESET, a
 * fresh listing that replaces the tree (feed-steps.ts says how changes
 * become steps). A path the server names that is not a valid path is never
 * taken.
 */
export const refreshRemote: RefreshRemote = async (client, state, remote, signal) => {
  if (!state.cursor) return { changed: await relist(client, state, remote, signal), reset: false };
  try {
    return { changed: await readFeed(client, state, remote, signal), reset: false };
  } catch (err) {
    if (!hasReason(err, ErrorReason.CURSOR_RESET)) throw err;
    return { changed: await relist(client, state, remote, signal), reset: true };
  }
};

async function relist(client: DriveClient, state: SyncState, remote: string, signal: AbortSignal): Promise<boolean> {
  const listing = await listRemote(client, remote, signal);
  const found = new Map<string, { kind: NodeKind; info: FileInfo | null }>();
  for (const e of listing.entries) if (!checkRemotePath(e.path)) found.set(e.path, { kind: e.kind, info: e.info });
  for (const p of [...found.keys()]) {
    for (let a = parentOf(p); a !== "" && !found.has(a); a = parentOf(a)) found.set(a, { kind: "folder", info: null });
  }
  // Ids: what Remote had at the path, else what Synced has there, else new; never one twice.
  const ids = new Map<string, string>();
  const taken = new Set<string>();
  for (const tree of [state.remote, state.synced]) {
    for (const [p, f] of found) {
      const had = tree.get(p);
      if (!ids.has(p) && had && had.kind === f.kind && !taken.has(had.id)) {
        ids.set(p, had.id);
        taken.add(had.id);
      }
    }
  }
  const next = new Map<string, RemoteNode>();
  for (const [p, f] of found) next.set(p, nodeOf(f.info, f.kind, ids.get(p) ?? state.newId()));
  const changed = next.size !== state.remote.size || [...next].some(([p, n]) => !sameOrNone(state.remote.get(p), n));
  await state.editRemote([...next].map(([path, node]) => ({ type: "set", path, node })), listing.cursor, { replace: true });
  return changed;
}

async function readFeed(client: DriveClient, state: SyncState, remote: string, signal: AbortSignal): Promise<boolean> {
  const feed = new FeedSteps(state, remote);
  let changed = false;
  for (;;) {
    const page = await client.feed.listChanges({ cursor: state.cursor, prefix: remotePrefix(remote), limit: 1000 }, { signal });
    if (await feed.page(page.changes, page.cursor)) changed = true;
    if (!page.hasMore) break;
  }
  return (await feed.finish()) || changed;
}

function sameOrNone(a: RemoteNode | undefined, b: RemoteNode): boolean {
  return a !== undefined && sameNode(a, b);
}
