import type { CheckRoots, MarkerContent } from "./types.js";

/** Placeholder: replaced at integration by the real guard. */
export const checkRoots: CheckRoots = () => {
  throw new Error("guard: not built yet");
};

/** Placeholder: replaced at integration by the real guard. */
export async function readMarker(_root: string): Promise<MarkerContent | null> {
  throw new Error("guard: not built yet");
}
