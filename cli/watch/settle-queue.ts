import { lstat } from "node:fs/promises";
import { join } from "node:path";

/**
 * push --watch: paths the watcher named, held until they settle. A file is
 * settled once neither its mtime nor its ctime moved for settleMs: a write,
 * a truncate, a chmod or a utimes all move ctime, which no process can set,
 * so one lstat says whether the file was touched lately. A path that is
 * gone (a delete), a folder or anything else is ready at once: pushTree
 * decides what it means. pushTree checks a file again after hashing and
 * after sending; this only keeps it from starting on a file still being
 * written.
 */
export class SettleQueue {
  private readonly pending = new Set<string>();

  constructor(
    private readonly root: string,
    private readonly settleMs: number,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  add(paths: Iterable<string>): void {
    for (const p of paths) this.pending.add(p);
  }

  /** Stats every pending path; returns those ready (and forgets them), and the delay until the next may be. */
  async take(): Promise<{ ready: string[]; nextMs: number | undefined }> {
    const ready: string[] = [];
    let next: number | undefined;
    const paths = [...this.pending];
    const states = await Promise.all(paths.map((p) => lstat(join(this.root, p), { bigint: true }).catch(() => null)));
    const now = Date.now();
    paths.forEach((path, i) => {
      const st = states[i];
      if (st?.isFile()) {
        const touched = Number((st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs) / 1_000_000n);
        const wait = touched + this.settleMs - now;
        if (wait > 0) {
          next = Math.min(next ?? wait, wait);
          return;
        }
      }
      this.pending.delete(path);
      ready.push(path);
    });
    return { ready, nextMs: next };
  }
}
