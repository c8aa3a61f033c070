import type { TreeResult } from "../tree/types.js";

/** What a whole watch did: every round's TreeResult added up (unsettled and cursor: the last round's). */
export class Totals {
  readonly result: TreeResult = { filesSent: 0, bytesSent: 0, filesSkipped: 0, bytesSkipped: 0, filesDeleted: 0, filesFailed: 0, foldersMade: 0, unsettled: [], cursor: "" };

  private first = true;

  /** Unchanged files count once, in the first round: a rescan finds the whole tree unchanged again. */
  add(r: TreeResult): void {
    const t = this.result;
    if (this.first) {
      t.filesSkipped += r.filesSkipped;
      t.bytesSkipped += r.bytesSkipped;
      this.first = false;
    }
    t.filesSent += r.filesSent;
    t.bytesSent += r.bytesSent;
    t.filesDeleted += r.filesDeleted;
    t.filesFailed += r.filesFailed;
    t.foldersMade += r.foldersMade;
    t.unsettled = r.unsettled;
    t.cursor = r.cursor || t.cursor;
  }
}
