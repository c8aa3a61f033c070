import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { TreeService } from "../../gen/drive/v1/tree_pb.js";
import type { Deps } from "../deps.js";

const unimplemented = () => Promise.reject(new ConnectError("not implemented yet", Code.Unimplemented));

/** TreeService (proto/drive/v1/tree.proto): batches for whole trees. */
export function treeService(_deps: Deps): ServiceImpl<typeof TreeService> {
  return {
    beginPuts: unimplemented,
    commitPuts: unimplemented,
    deletePaths: unimplemented,
    move: unimplemented,
    getDownloads: unimplemented,
  };
}
