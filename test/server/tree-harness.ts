import { Blake3Hasher } from "@napi-rs/blake-hash";
import { create } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { createClient, createRouterTransport, type Client, type Interceptor } from "@connectrpc/connect";
import { TreeService, type PendingPut, type PutItem } from "../../gen/drive/v1/tree_pb.js";
import { ContentHashKind, EntryKind } from "../../gen/drive/v1/types_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { PutItemSchema } from "../../gen/drive/v1/tree_pb.js";
import { kCaller } from "../../server/rpc/caller.js";
import { errorInterceptor } from "../../server/rpc/error-interceptor.js";
import { treeService } from "../../server/rpc/tree-service.js";
import { startRpcHarness, type RpcHarness } from "./rpc-harness.js";
import type { Deps } from "../../server/deps.js";

export interface TreeHarness extends RpcHarness {
  tree: Client<typeof TreeService>;
}

/** startRpcHarness plus TreeService, on the same deps and caller. */
export async function startTreeHarness(opts: { settings?: Partial<Deps["settings"]> } = {}): Promise<TreeHarness> {
  const h = await startRpcHarness(opts);
  const asCaller: Interceptor = (next) => (req) => {
    req.contextValues.set(kCaller, h.caller);
    return next(req);
  };
  const transport = createRouterTransport((router) => router.service(TreeService, treeService(h.deps)), {
    router: { interceptors: [errorInterceptor(h.deps.log), asCaller] },
  });
  return Object.assign(h, { tree: createClient(TreeService, transport) });
}

export const blake3 = (data: Buffer | string) => new Blake3Hasher().update(data).digestBuffer();

/** A PutItem for `data` as one chunk (small files are one chunk under the chunking rules). */
type ItemInit = MessageInitShape<typeof PutItemSchema>;

export function fileItem(path: string, data: Buffer, extra: Omit<ItemInit, "$typeName"> = {}): ItemInit {
  const hash = blake3(data);
  return {
    path,
    kind: EntryKind.FILE,
    size: BigInt(data.length),
    contentHash: hash,
    contentHashKind: ContentHashKind.BLAKE3,
    chunks: data.length ? [{ size: BigInt(data.length), hash }] : [],
    ...extra,
  };
}

export const folderItem = (path: string, extra: Omit<ItemInit, "$typeName"> = {}): ItemInit => ({ path, kind: EntryKind.FOLDER, ...extra });

export const mtimeOf = (us: number) => create(TimestampSchema, { seconds: BigInt(Math.floor(us / 1e6)), nanos: (us % 1e6) * 1000 });

/** PUTs the bytes to a pending put's URL; returns the status. */
export async function putBytes(p: PendingPut, data: Buffer): Promise<number> {
  const res = await fetch(p.url, { method: "PUT", headers: p.headers, body: data });
  await res.arrayBuffer();
  return res.status;
}

export type { PutItem };
