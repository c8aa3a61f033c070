import { EntryKind, type FileInfo } from "../../gen/drive/v1/types_pb.js";
import type { DriveClient } from "../rpc/drive-client.js";

/** One live remote entry under the tree's remote folder, by its path relative to that folder. */
export interface RemoteEntry {
  /** Relative to the remote folder; the server's own spelling (the fence checks it before any local use). */
  path: string;
  kind: "file" | "folder";
  info: FileInfo;
}

export interface RemoteListing {
  entries: RemoteEntry[];
  /** The feed cursor of the listing's first page (ListFilesResponse.cursor). */
  cursor: string;
}

/** The prefix that lists everything under a remote folder ("" for the root). */
export function remotePrefix(remote: string): string {
  return remote ? `${remote}/` : "";
}

export function remoteFull(remote: string, rel: string): string {
  return remote ? `${remote}/${rel}` : rel;
}

/**
 * Every live entry under the remote folder, paged through ListFiles. The
 * listing is the truth for the remote side. A folder entry at the folder
 * itself is not an entry of the tree.
 */
export async function listRemote(client: DriveClient, remote: string, signal: AbortSignal, onProgress?: (n: number) => void): Promise<RemoteListing> {
  const prefix = remotePrefix(remote);
  const entries: RemoteEntry[] = [];
  let cursor = "";
  let pageToken = "";
  do {
    const page = await client.files.listFiles({ prefix, pageSize: 1000, pageToken }, { signal });
    if (!cursor) cursor = page.cursor;
    for (const f of page.files) {
      if (f.deleted || !f.path.startsWith(prefix) || f.path.length === prefix.length) continue;
      entries.push({ path: f.path.slice(prefix.length), kind: f.kind === EntryKind.FOLDER ? "folder" : "file", info: f });
    }
    onProgress?.(entries.length);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return { entries, cursor };
}
