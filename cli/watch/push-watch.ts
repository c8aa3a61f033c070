import { watchDeps } from "./deps.js";
import { watchPush } from "./push-loop.js";
import type { RunWatch } from "./types.js";

/** `drive push --watch`: see push-loop.ts. */
export const runPushWatch: RunWatch = (ctx, client, opts, emit) => watchPush(watchDeps, ctx, client, opts, emit);
