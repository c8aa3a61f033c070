import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import { CliError, errorInfoOf, toCliError, type FailureKind } from "../errors.js";
import type { DriveClient } from "../rpc/drive-client.js";
import { printable } from "../ui/fit.js";
import type { CommandContext } from "./context.js";
import type { RestoreFlags } from "./restore.js";

/**
 * Restore's failure in the words of the command; the kinds (and so the exit
 * codes) are cli/errors.ts's. The server says NotFound alike for a path that
 * never existed (or is another user's), a revision that does not exist, one
 * that records a deletion, and a folder that only paths pass through: a few
 * reads after the failure tell them apart.
 */
export async function restoreError(client: DriveClient, ctx: CommandContext, err: unknown, path: string, flags: RestoreFlags): Promise<CliError> {
  if (!(err instanceof ConnectError)) return toCliError(err);
  const info = errorInfoOf(err);
  const reason = info && info.reason !== ErrorReason.UNSPECIFIED ? ErrorReason[info.reason] : undefined;
  const say = (kind: FailureKind, message: string) => new CliError(kind, `restore: ${message}`, { cause: err, reason });
  const name = printable(path);
  if (info?.reason === ErrorReason.REVISION_CONFLICT) {
    const now = info.detail.case === "revisionConflict" ? info.detail.value : undefined;
    const current = now ? (now.currentDeleted ? `it is deleted now (revision ${now.currentRevision})` : `it is at revision ${now.currentRevision} now`) : "it changed";
    return say("conflict", `${name} is no longer at revision ${flags.ifRevision ?? "?"}: ${current}; nothing restored`);
  }
  // Something else lies where the entry would come back; the server names it.
  if (err.code === Code.AlreadyExists) return say("conflict", `cannot bring ${name} back: ${printable(err.rawMessage)}; nothing restored`);
  if (err.code === Code.NotFound) return say(...(await whyNotFound(client, ctx, path, flags.revision)));
  if (err.code === Code.InvalidArgument) return say("usage", printable(err.rawMessage));
  if (err.code === Code.Unimplemented) return say("internal", "this server cannot restore files yet (it answered Unimplemented); upgrade it");
  return toCliError(err);
}

async function whyNotFound(client: DriveClient, ctx: CommandContext, path: string, revision: number): Promise<[FailureKind, string]> {
  const name = printable(path);
  const newest = await newestRevision(client, ctx, path);
  if (newest === null) {
    // No entry at the path: paths under it, live or deleted, make it a folder.
    const under = { prefix: `${path}/`, pageSize: 1 };
    const [live, gone] = await Promise.all([
      client.files.listFiles(under, { signal: ctx.signal }),
      client.files.listFiles({ ...under, deleted: true }, { signal: ctx.signal }),
    ]);
    if (live.files.length > 0 || gone.files.length > 0) {
      return ["usage", `${name} is a folder; restore brings back one file (drive ls --deleted ${name}/ lists the deleted files under it)`];
    }
    return ["not_found", `${name}: no such file (it never existed)`];
  }
  if (revision === 0) return ["not_found", `${name} has no revision to bring back: each one records a deletion`];
  // Revisions of a path count up from 1, so one at or below the newest exists: refused, it is a deletion.
  if (revision > newest) return ["not_found", `${name} has no revision ${revision}: its newest is ${newest} (drive versions ${name} lists them)`];
  return ["not_found", `revision ${revision} of ${name} records its deletion; there is nothing to bring back from it (drive versions ${name} lists the others)`];
}

/** The path's newest revision, deletions included; null when it never existed. */
async function newestRevision(client: DriveClient, ctx: CommandContext, path: string): Promise<bigint | null> {
  try {
    const page = await client.files.listVersions({ path, pageSize: 1 }, { signal: ctx.signal });
    return page.versions[0]?.revision ?? null;
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.NotFound) return null;
    throw err;
  }
}
