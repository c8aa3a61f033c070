import { Worker } from "node:worker_threads";

/**
 * FastCDC in a worker thread, so that cutting (the gear hash, about half
 * the scan's CPU) runs beside the reads and BLAKE3 on this thread. The
 * stream's blocks sit in a SharedArrayBuffer ring that both threads see:
 * cut(offset, length) hands the worker a block (in stream order) and
 * answers, in the same order, with the cuts that complete in it. The
 * worker only reads the ring, so this thread may hash a block while it is
 * being cut, and must not overwrite it before the answer comes.
 *
 * The worker is cut-worker.js next to this module, or cut-worker.ts when
 * running from sources (vitest, DRIVE_FROM_SOURCE=1): Node cannot load .ts
 * in a worker by itself, so a one-line bootstrap registers tsx there first
 * (which makes the start about half a second instead of tens of ms).
 */
export class CutThread {
  private readonly worker: Worker;
  private readonly waiting: Array<{ resolve: (value: never) => void; reject: (err: Error) => void }> = [];
  private failure: Error | null = null;

  constructor(ring: SharedArrayBuffer) {
    const fromSource = import.meta.url.endsWith(".ts");
    const script = new URL(fromSource ? "./cut-worker.ts" : "./cut-worker.js", import.meta.url);
    const options = { workerData: { ring } };
    this.worker = fromSource
      ? new Worker(
          `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((m) => { m.register(); return import(${JSON.stringify(script.href)}); })`,
          { ...options, eval: true },
        )
      : new Worker(script, options);
    this.worker.on("message", (msg) => this.waiting.shift()?.resolve(msg as never));
    this.worker.on("error", (err) => this.fail(err));
    this.worker.on("exit", (code) => this.fail(new Error(`the chunking worker exited (code ${code})`)));
  }

  /** The cuts (absolute stream offsets) that complete in ring[offset, offset + length), the stream's next block. */
  async cut(offset: number, length: number): Promise<number[]> {
    return (await this.send<{ cuts: number[] }>({ offset, length })).cuts;
  }

  /** The cut that ends the stream, or null (FastCdc.finish). */
  async finish(): Promise<number | null> {
    return (await this.send<{ end: number | null }>({ finish: true })).end;
  }

  async close(): Promise<void> {
    this.failure ??= new Error("the chunking worker was closed");
    this.worker.removeAllListeners("exit");
    await this.worker.terminate();
  }

  private send<T>(msg: unknown): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ resolve: resolve as (value: never) => void, reject });
      this.worker.postMessage(msg);
    });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiting.splice(0)) w.reject(this.failure);
  }
}
