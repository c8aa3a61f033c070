import type { RefreshRemote } from "./types.js";

/** Placeholder: replaced at integration by the real remote tree. */
export const refreshRemote: RefreshRemote = () => {
  throw new Error("remote-tree: not built yet");
};
