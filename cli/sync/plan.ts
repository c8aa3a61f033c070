import type { PlanSync } from "./types.js";

/** Placeholder: replaced at integration by the real planner. */
export const planSync: PlanSync = () => {
  throw new Error("plan: not built yet");
};
