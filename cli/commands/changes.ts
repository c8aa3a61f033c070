import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import { ChangeOp, type Change } from "../../gen/drive/v1/feed_pb.js";
import { EntryKind } from "../../gen/drive/v1/types_pb.js";
import { hex } from "../../shared/rules/content-hash.js";
import { ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import { CliError, errorInfoOf, exitCodes } from "../errors.js";
import { followChanges } from "../feed/follow.js";
import { FeedReset } from "../feed/types.js";
import { printJson, withClient, type CommandContext } from "./context.js";
import { hashKindName, localTime } from "./file-fields.js";

const HELP = `
Prints the change feed, one line per change, oldest first, and then the
cursor to resume from:

  2026-01-31 12:34:56  put     r3   docs/a.txt
  2026-01-31 12:35:02  move    r1   docs/b.txt  (from old/b.txt)
  cursor  AQEBBw

With --json, one {"type":"change",...} object per change (each with its own
"cursor") and {"type":"cursor","cursor":...,"caught_up":...} lines: at the
end, and with --follow on every heartbeat.

Without --follow it prints what the journal holds after --cursor (from the
oldest change kept when there is none) and exits. With --follow it keeps
printing changes as they commit, on any server instance, reconnecting by
itself; without --cursor it then starts at the current end, so only changes
made from now on are printed: a pipeline can wait for a new artifact with
  drive changes --follow --prefix ci/builds/ | head -n 1
Ctrl-C stops it and prints the last cursor; it exits 0.

When the cursor is older than the server keeps (--journal-retention) or the
server's database was restored, it says so and exits ${exitCodes.cursor_reset}: list again
(drive ls), and follow from a new cursor.`;

export function registerChanges(program: Command, context: () => CommandContext): void {
  program
    .command("changes")
    .description("print the change feed: every put, delete, move and attribute change, with a cursor to resume from")
    .option("--cursor <cursor>", "start after this cursor (as printed before)")
    .option("--follow", "keep printing changes as they commit (from the current end unless --cursor)", false)
    .option("--prefix <prefix>", "only changes to paths that start with this")
    .addHelpText("after", HELP)
    .action(async (opts: { cursor?: string; follow: boolean; prefix?: string }) => {
      const ctx = context();
      const prefix = (opts.prefix ?? "").replace(/^\/+/, "");
      // `| head`: the reader left. Say nothing more and stop.
      const gone = new AbortController();
      const onError = (err: NodeJS.ErrnoException) => (err.code === "EPIPE" ? gone.abort() : undefined);
      ctx.stdout.on("error", onError);
      const signal = AbortSignal.any([ctx.signal, gone.signal]);
      const out = printer(ctx);
      try {
        await withClient(ctx, async (client) => {
          let cursor = opts.cursor ?? "";
          try {
            if (!opts.follow) {
              for (;;) {
                const page = await client.feed.listChanges({ cursor, prefix }, { signal });
                for (const c of page.changes) out.change(c);
                cursor = page.cursor;
                if (!page.hasMore) break;
              }
              return out.cursor(cursor, true);
            }
            if (opts.cursor === undefined) cursor = (await client.feed.getCursor({}, { signal })).cursor;
            if (ctx.json) out.cursor(cursor, false);
            for await (const step of followChanges(client, { cursor, prefix, signal })) {
              for (const c of step.changes) out.change(c);
              cursor = step.cursor;
              if (step.changes.length === 0 && ctx.json) out.cursor(cursor, step.caughtUp);
            }
            if (!gone.signal.aborted) out.cursor(cursor, false);
          } catch (err) {
            if (err instanceof FeedReset || errorInfoOf(err)?.reason === ErrorReason.CURSOR_RESET) {
              throw new CliError("cursor_reset", `cursor reset: the server cannot replay the feed from this cursor; list again (drive ls) and start from a new cursor`, {
                reason: "CURSOR_RESET",
                cause: err,
              });
            }
            if (signal.aborted && opts.follow) {
              if (!gone.signal.aborted) out.cursor(cursor, false);
              return;
            }
            throw err;
          }
        });
      } finally {
        ctx.stdout.off("error", onError);
      }
    });
}

const OP_NAMES: Record<ChangeOp, string> = {
  [ChangeOp.UNSPECIFIED]: "unknown",
  [ChangeOp.PUT]: "put",
  [ChangeOp.DELETE]: "delete",
  [ChangeOp.MOVE]: "move",
  [ChangeOp.ATTRS]: "attrs",
};

function printer(ctx: CommandContext) {
  return {
    change(c: Change) {
      const f = c.file!;
      const op = OP_NAMES[c.op] ?? "unknown";
      if (ctx.json) {
        return printJson(ctx, {
          type: "change",
          op,
          path: f.path,
          revision: f.revision,
          kind: f.kind === EntryKind.FOLDER ? "folder" : "file",
          size: f.size,
          content_hash: hex(f.contentHash),
          content_hash_kind: hashKindName(f.contentHashKind, f.contentHash),
          mode: f.mode || null,
          mtime: f.mtime ? timestampDate(f.mtime).toISOString() : null,
          ...(c.op === ChangeOp.MOVE ? { from_path: c.fromPath, from_revision: c.fromRevision } : {}),
          committed_at: c.committedAt ? timestampDate(c.committedAt).toISOString() : null,
          cursor: c.cursor,
        });
      }
      const when = c.committedAt ? localTime(timestampDate(c.committedAt)) : "";
      const from = c.op === ChangeOp.MOVE ? `  (from ${c.fromPath})` : "";
      ctx.stdout.write(`${when}  ${op.padEnd(6)}  r${String(f.revision).padEnd(4)} ${f.path}${from}\n`);
    },
    cursor(cursor: string, caughtUp: boolean) {
      if (ctx.json) return printJson(ctx, { type: "cursor", cursor, caught_up: caughtUp });
      ctx.stdout.write(`cursor  ${cursor}\n`);
    },
  };
}
