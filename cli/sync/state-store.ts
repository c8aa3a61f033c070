import type { OpenSyncState } from "./types.js";

/** Placeholder: replaced at integration by the real state store. */
export const openSyncState: OpenSyncState = () => {
  throw new Error("state-store: not built yet");
};
