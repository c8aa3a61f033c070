import { Code, ConnectError } from "@connectrpc/connect";
import type { Command } from "commander";
import { ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import { CliError, errorInfoOf, toCliError } from "../errors.js";
import { printJson, withClient, type CommandContext } from "./context.js";
import { parseRevision, remotePath } from "./parse-args.js";

const HELP = `
The move happens on the server in one transaction: a file, or a folder with
everything under it. No bytes move, and each path moved gets one journal
entry. The old path keeps its history (drive versions OLD). DST ending in /
moves SRC into that folder, under its own name.

Exit codes: 3 when nothing is at SRC, 6 when DST (or a path under it)
already exists or --if-revision is stale, 2 when DST is SRC or lies under it.`;

export function registerMv(program: Command, context: () => CommandContext): void {
  program
    .command("mv")
    .description("rename a file or a folder on the server, in one transaction, moving no bytes")
    .argument("<src>", "path on the server: a file or a folder")
    .argument("<dst>", "new path; ending in / puts SRC in that folder")
    .option("--if-revision <rev>", "a file only: move only if it is still at this revision", parseRevision)
    .addHelpText("after", HELP)
    .action(async (src: string, dst: string, opts: { ifRevision?: number }) => {
      const ctx = context();
      const from = remotePath(src.replace(/\/+$/, "") || src);
      const to = remotePath(dst.endsWith("/") ? `${dst}${from.split("/").pop()}` : dst.replace(/\/+$/, "") || dst);
      await withClient(ctx, async (client) => {
        let moved: bigint;
        try {
          const r = await client.tree.move(
            { fromPath: from, toPath: to, baseRevision: opts.ifRevision === undefined ? undefined : BigInt(opts.ifRevision) },
            { signal: ctx.signal },
          );
          moved = r.moved;
        } catch (err) {
          throw moveError(err, from, to, opts.ifRevision);
        }
        if (ctx.json) printJson(ctx, { type: "moved", from, to, moved });
        else ctx.stdout.write(`moved ${from} -> ${to} (${moved} ${moved === 1n ? "path" : "paths"})\n`);
      });
    });
}

/** The server's answer in the words of the command; the kinds (and exit codes) are cli/errors.ts's. */
export function moveError(err: unknown, from: string, to: string, ifRevision: number | undefined): CliError {
  if (!(err instanceof ConnectError)) return toCliError(err);
  const info = errorInfoOf(err);
  const reason = info && info.reason !== ErrorReason.UNSPECIFIED ? ErrorReason[info.reason] : undefined;
  const say = (kind: ConstructorParameters<typeof CliError>[0], message: string) => new CliError(kind, message, { cause: err, reason });
  if (info?.reason === ErrorReason.DESTINATION_EXISTS || err.code === Code.AlreadyExists) {
    return say("conflict", `mv: ${to} already exists (or a path under it does); nothing moved`);
  }
  if (info?.reason === ErrorReason.REVISION_CONFLICT) {
    const now = info.detail.case === "revisionConflict" ? info.detail.value : undefined;
    const current = now ? (now.currentDeleted ? "it is deleted now" : `it is at revision ${now.currentRevision} now`) : "it changed";
    return say("conflict", `mv: ${from} is no longer at revision ${ifRevision ?? "?"}: ${current}; nothing moved`);
  }
  if (err.code === Code.NotFound) return say("not_found", `mv: nothing at ${from}`);
  if (err.code === Code.Unimplemented) return say("internal", `mv: this server cannot move paths yet (it answered Unimplemented); upgrade it`);
  if (err.code === Code.InvalidArgument) return say("usage", `mv: ${err.rawMessage}`);
  return toCliError(err);
}
