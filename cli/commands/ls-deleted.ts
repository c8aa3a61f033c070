import type { FileInfo } from "../../gen/drive/v1/types_pb.js";
import { hex } from "../../shared/rules/content-hash.js";
import { printable } from "../ui/fit.js";
import type { DriveClient } from "../rpc/drive-client.js";
import { printJson, type CommandContext } from "./context.js";
import { fileFields, hashKindName, humanSize, localTime, modeString, modifiedAt, type ListingOptions } from "./file-fields.js";

/**
 * The revision `drive restore PATH` brings back for a deleted file. A
 * deletion is only ever recorded over a live revision (deleting nothing is
 * NotFound, and a move away records its deletion at the source after its
 * last live revision), and revisions of a path count up by one, so it is
 * the one just before the deletion: the last live revision, whose size and
 * hash the deleted listing carries.
 */
export function lastLiveRevision(f: Pick<FileInfo, "revision">): bigint {
  return f.revision - 1n;
}

/**
 * A deleted file as `ls --deleted --json` prints it: ls's fields for the last
 * live content, with revision the deletion's (as the server counts it) and
 * modified_at when it was deleted, plus deleted, deleted_at and
 * restore_revision (what `drive restore PATH` brings back).
 */
export function deletedFields(f: FileInfo): Record<string, unknown> {
  return {
    ...fileFields(f),
    deleted: true,
    deleted_at: modifiedAt(f).toISOString(),
    restore_revision: lastLiveRevision(f),
  };
}

/**
 * One line of `drive ls --deleted`: the last live size, when it was deleted,
 * the revision restore brings back, and the path:
 *   "          4096  deleted 2026-12-02 06:15:03 +0100  r2     notes/todo.txt"
 * -l puts mode, kind and the last live content hash in as ls -l does.
 */
export function deletedLine(f: FileInfo, opts: ListingOptions): string {
  const size = opts.human ? humanSize(f.size) : String(f.size);
  const mode = opts.long ? `${modeString("file", f.mode)}  ${"file".padEnd(6)}  ` : "";
  const hash = opts.long ? `${(hashKindName(f.contentHashKind, f.contentHash) ?? "-").padEnd(10)} ${hex(f.contentHash).padEnd(64)}  ` : "";
  return `${mode}${size.padStart(opts.human ? 6 : 14)}  deleted ${localTime(modifiedAt(f))}  r${String(lastLiveRevision(f)).padEnd(5)} ${hash}${printable(f.path)}`;
}

/**
 * `drive ls --deleted [PREFIX]`: every deleted file whose path starts with
 * PREFIX, a page at a time, in path order. An empty listing says so on
 * stderr (stdout stays empty for scripts), and under --json prints no line.
 */
export async function listDeleted(client: DriveClient, ctx: CommandContext, prefix: string, opts: ListingOptions): Promise<void> {
  let pageToken = "";
  let any = false;
  do {
    const page = await client.files.listFiles({ prefix, pageToken, deleted: true }, { signal: ctx.signal });
    for (const f of page.files) {
      any = true;
      if (ctx.json) printJson(ctx, deletedFields(f));
      else ctx.stdout.write(`${deletedLine(f, opts)}\n`);
    }
    pageToken = page.nextPageToken;
  } while (pageToken);
  if (!any && !ctx.json && !ctx.quiet) ctx.stderr.write(prefix ? `no deleted files under ${printable(prefix)}\n` : "no deleted files\n");
}
