import { lstat } from "node:fs/promises";
import { join } from "node:path";
import type { IsUnchanged, LocalEntry, LocalIndex } from "../local/types.js";
import { isRacy } from "../local/unchanged.js";
import type { RunListener } from "../transfer/events.js";

const HINT_DELAY_MS = 1_000;

/**
 * pull --watch: notices local edits to files drive wrote, as the watcher
 * names them and on rescans, and says once per file that it will be kept.
 * applyChanges makes the decision itself, from the disk, when a remote
 * change arrives; this only tells the user early, and keeps the set of
 * edited paths for the summary.
 */
export class LocalEdits {
  readonly edited = new Set<string>();
  private readonly later = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly root: string,
    private readonly index: LocalIndex,
    private readonly isUnchanged: IsUnchanged,
    private readonly emit: RunListener,
  ) {}

  /**
   * Checks these paths a little later: the watcher also names the files
   * drive itself just wrote, before their index entries are written.
   */
  hint(paths: Iterable<string>): void {
    for (const p of paths) this.later.add(p);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      const batch = [...this.later];
      this.later.clear();
      void this.check(batch).catch(() => undefined); // the index may be closing: a check is only advice
    }, HINT_DELAY_MS);
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  async check(paths: Iterable<string>): Promise<void> {
    for (const path of paths) {
      const recorded = this.index.get(path);
      if (!recorded || recorded.kind !== "file") continue;
      const st = await lstat(join(this.root, path), { bigint: true }).catch(() => null);
      if (!st || !st.isFile()) continue; // gone or replaced: a remote change simply lands
      const disk: LocalEntry = { path, kind: "file", size: Number(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, mode: Number(st.mode & 0o7777n), dev: st.dev, ino: st.ino };
      // An entry recorded in the same clock tick as its file's last change proves nothing either way (hlocal's racy rule): say nothing.
      if (isRacy(recorded)) continue;
      if (this.isUnchanged(disk, this.index.get(path))) {
        this.edited.delete(path);
      } else if (!this.edited.has(path)) {
        this.edited.add(path);
        this.emit({ type: "warning", path, message: `${path} changed here since drive wrote it: kept; a remote change to it will be written beside it as a conflicted copy` });
      }
    }
  }

  /** Every file the index holds: a rescan. */
  async checkAll(): Promise<void> {
    const paths: string[] = [];
    for (const e of this.index.entries()) if (e.kind === "file") paths.push(e.path);
    await this.check(paths);
  }
}
