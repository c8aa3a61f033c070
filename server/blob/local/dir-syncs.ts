import { syncDir } from "./durable-fs.js";

/**
 * Directory fsyncs shared between callers, as a group commit: a caller that
 * asks while a sync of the same directory runs joins the next one, which
 * starts when the running one ends. Every entry made before the call is on
 * disk when its promise resolves, and 100 object PUTs landing at once into
 * one directory cost two or three syncs of it rather than 100.
 */
export class DirSyncs {
  /** A sync asked for and not started yet, which later callers join. */
  readonly #queued = new Map<string, Promise<void>>();
  readonly #running = new Map<string, Promise<void>>();

  sync(dir: string): Promise<void> {
    const queued = this.#queued.get(dir);
    if (queued) return queued;
    const before = this.#running.get(dir) ?? Promise.resolve();
    const next = before
      .catch(() => {})
      .then(() => {
        this.#queued.delete(dir);
        const run = syncDir(dir);
        this.#running.set(dir, run);
        return run.finally(() => {
          if (this.#running.get(dir) === run) this.#running.delete(dir);
        });
      });
    this.#queued.set(dir, next);
    return next;
  }
}
