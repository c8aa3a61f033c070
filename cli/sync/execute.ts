import type { ExecutePlan } from "./types.js";

/** Placeholder: replaced at integration by the real executor. */
export const executePlan: ExecutePlan = () => {
  throw new Error("execute: not built yet");
};
