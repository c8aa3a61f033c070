import type { ScanLocal } from "./types.js";

/** Placeholder: replaced at integration by the real scanner. */
export const scanLocal: ScanLocal = () => {
  throw new Error("scan-local: not built yet");
};
