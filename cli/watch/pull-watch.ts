import { watchDeps } from "./deps.js";
import { watchPull } from "./pull-loop.js";
import type { RunWatch } from "./types.js";

/** `drive pull --watch`: see pull-loop.ts. */
export const runPullWatch: RunWatch = (ctx, client, opts, emit) => watchPull(watchDeps, ctx, client, opts, emit);
