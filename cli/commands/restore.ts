import { Code, ConnectError } from "@connectrpc/connect";
import type { Command } from "commander";
import type { FileInfo } from "../../gen/drive/v1/types_pb.js";
import type { DriveClient } from "../rpc/drive-client.js";
import { printable } from "../ui/fit.js";
import { printJson, withClient, type CommandContext } from "./context.js";
import { fileFields, kindName } from "./file-fields.js";
import { parseRevision, remotePath } from "./parse-args.js";
import { restoreError } from "./restore-error.js";

const HELP = `
Without --revision, brings back a deleted file's last live content (drive
ls --deleted lists deleted files, with that revision). With --revision N,
revision N of a file, deleted or live: an overwritten file gets its old
content back. Either way it is a new revision with revision N's content,
mode and mtime, the older ones are kept, no bytes move, and the change
syncs down like any other. Restoring what the path already holds changes
nothing and says so.

Exit codes: 3 when PATH never existed, or revision N does not exist or
records a deletion; 2 when PATH is a folder that paths pass through (restore
brings back one file: drive ls --deleted PATH/ lists those under it); 6 when
something now lies where it would come back (a folder of paths, or a file
above it), or --if-revision is stale.`;

export interface RestoreFlags {
  /** 0: the newest revision that is not a deletion. */
  revision: number;
  ifRevision: number | undefined;
}

export function registerRestore(program: Command, context: () => CommandContext): void {
  program
    .command("restore")
    .description("bring back a deleted file, or an earlier revision of a file, as a new revision (see ls --deleted, versions)")
    .argument("<path>", "path on the server: a file, deleted or live")
    .option("--revision <rev>", "the revision to bring back (default: the last one before the deletion)", parseRevision)
    .option("--if-revision <rev>", "only if the path is still at this revision", parseRevision)
    .addHelpText("after", HELP)
    .action(async (input: string, opts: { revision?: number; ifRevision?: number }) => {
      const ctx = context();
      const path = remotePath(input.replace(/\/+$/, "") || input);
      const flags: RestoreFlags = { revision: opts.revision ?? 0, ifRevision: opts.ifRevision };
      await withClient(ctx, (client) => restore(client, ctx, path, flags));
    });
}

async function restore(client: DriveClient, ctx: CommandContext, path: string, flags: RestoreFlags): Promise<void> {
  // Only to tell "restored" from "already held that content": the answer is the same state either way.
  const before = await headOrNull(client, ctx, path);
  let restored: { file: FileInfo; from: bigint };
  try {
    const res = await client.files.restore(
      { path, revision: BigInt(flags.revision), baseRevision: flags.ifRevision === undefined ? undefined : BigInt(flags.ifRevision) },
      { signal: ctx.signal },
    );
    if (!res.file) throw new Error(`the server sent no file for ${path}`);
    restored = { file: res.file, from: res.restoredFrom };
  } catch (err) {
    throw await restoreError(client, ctx, err, path, flags);
  }
  const { file, from } = restored;
  const changed = before === null || before.revision !== file.revision;
  const folder = kindName(file) === "folder";
  // A folder entry comes back alone: say so when files under it stay deleted.
  const deletedUnder = folder && changed ? await anyDeletedUnder(client, ctx, path) : false;
  if (ctx.json) {
    printJson(ctx, { ...fileFields(file), type: "restored", restored_from: from, changed });
    return;
  }
  const name = printable(folder ? `${path}/` : path);
  if (changed) {
    ctx.stdout.write(`restored ${name} from revision ${from} as revision ${file.revision}\n`);
    if (deletedUnder) ctx.stderr.write(`the folder entry alone: files under it stay deleted (drive ls --deleted ${printable(path)}/ lists them)\n`);
  } else if (flags.revision === 0) {
    ctx.stdout.write(`${name} is not deleted: revision ${file.revision} is current; nothing restored (--revision N brings back an older one: drive versions ${printable(path)})\n`);
  } else if (from === file.revision) {
    ctx.stdout.write(`${name}: revision ${from} is the current one; nothing restored\n`);
  } else {
    ctx.stdout.write(`${name} already holds revision ${from}'s content (as revision ${file.revision}); nothing restored\n`);
  }
}

async function headOrNull(client: DriveClient, ctx: CommandContext, path: string): Promise<FileInfo | null> {
  try {
    return (await client.files.stat({ path }, { signal: ctx.signal })).file ?? null;
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.NotFound) return null;
    throw err;
  }
}

async function anyDeletedUnder(client: DriveClient, ctx: CommandContext, path: string): Promise<boolean> {
  const page = await client.files.listFiles({ prefix: `${path}/`, deleted: true, pageSize: 1 }, { signal: ctx.signal });
  return page.files.length > 0;
}
