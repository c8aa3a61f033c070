import { realpath } from "node:fs/promises";
import type { DriveClient } from "../rpc/drive-client.js";
import type { IndexKey } from "../local/types.js";
import type { TreeOptions } from "../tree/types.js";

/** The index of this (server, remote folder, local folder): the same one push, pull and their --watch use. */
export async function indexKey(client: DriveClient, opts: Pick<TreeOptions, "local" | "remote">): Promise<IndexKey> {
  return { server: client.server, remoteRoot: opts.remote, localRoot: await realpath(opts.local) };
}
