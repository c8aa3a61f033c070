import { runParallel } from "../run-parallel.js";
import { fetchChunks, streamChunk, type FetchContext } from "./fetch-chunks.js";
import type { OrderedWindow } from "./ordered-window.js";
import type { PullTask } from "./plan-tasks.js";

export interface TaskIo {
  /** Where a chunk too big for memory is streamed: the temporary file at its offset, or a spool for stdout. */
  streamTarget(index: number): Promise<{ fd: number; position: number }>;
}

/**
 * Runs the plan. Chunks to take from local files or from earlier in the
 * file go to the window at once, as where to read them (takeInOrder reads
 * them at their turn). The fetches run up to `concurrency` at once, started
 * in file order, each once the reorder window has room for it, each
 * delivering verified chunks to the window. The first failure (a GET that
 * gave up, the sink failing) stops the rest.
 */
export async function runTasks(tasks: readonly PullTask[], ctx: FetchContext, window: OrderedWindow, io: TaskIo, signal: AbortSignal): Promise<void> {
  const deliver = window.deliver.bind(window);
  for (const t of tasks) {
    if (t.kind === "local") deliver(t.chunk, { local: t.ref });
    else if (t.kind === "copy") deliver(t.chunk, { copyFrom: t.from });
  }
  const moving = tasks.filter((t) => t.kind === "fetch" || t.kind === "stream");
  await runParallel(
    moving,
    ctx.opts.concurrency,
    async (task, s) => {
      if (task.kind === "fetch") {
        await window.room(task.first, task.plainEnd, s);
        return fetchChunks(ctx, task.first, task.end, s, deliver);
      }
      if (task.kind === "stream") {
        await window.room(task.chunk, task.plainEnd, s);
        const at = await io.streamTarget(task.chunk);
        await streamChunk(ctx, task.chunk, at.fd, at.position, s);
        return deliver(task.chunk, at);
      }
    },
    signal,
  );
}
