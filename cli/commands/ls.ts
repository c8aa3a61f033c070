import { Code, ConnectError } from "@connectrpc/connect";
import type { Command } from "commander";
import { EntryKind, type FileInfo } from "../../gen/drive/v1/types_pb.js";
import { CliError } from "../errors.js";
import type { DriveClient } from "../rpc/drive-client.js";
import { printJson, withClient, type CommandContext } from "./context.js";
import { fileFields, implicitFolderFields, listingLine, type ListingOptions } from "./file-fields.js";
import { listDeleted } from "./ls-deleted.js";

interface LsFlags {
  recursive: boolean;
  deleted: boolean;
  long: boolean;
  human: boolean;
}

const HELP = `
Without -R, PATH is a folder (or a file) and ls shows what is directly in it,
as ls does: a folder that deeper paths pass through shows once, ending in /.
With -R, everything under PATH, whose paths start with it (a prefix: "ls -R
doc" also lists "docs/"). Times are the file's own mtime when its writer gave
one, else when it was committed, in local time with the offset (set TZ to
change it). -l adds the mode (its first letter is the kind: d for a folder),
the kind and the content hash.

--deleted lists deleted files instead, everything under PATH as with -R (a
prefix): each one's last live size, when it was deleted, the revision
"drive restore PATH" brings back (rN), and the path. drive versions PATH
shows every revision. A file moved away shows as deleted at its old path.`;

export function registerLs(program: Command, context: () => CommandContext): void {
  program
    .command("ls")
    .description("list files and folders: size, modification time, revision and path (-l: mode, kind and content hash)")
    .argument("[path]", "a folder, a file, or with -R a prefix")
    .option("-R, --recursive", "everything under PATH, not only what is directly in it", false)
    .option("-l, --long", "also mode, kind, and the content hash and its kind (blake3: what b3sum prints for the file)", false)
    .option("-h, --human-readable", "sizes like 4.0K, 12M, 1.5G", false)
    .option("--deleted", "deleted files under PATH (a prefix), with the revision drive restore brings back", false)
    // -h is the sizes, as in ls: help is --help alone here.
    .helpOption("--help", "display help for command")
    .addHelpText("after", HELP)
    .action(async (path: string | undefined, opts: { recursive: boolean; deleted: boolean; long: boolean; humanReadable: boolean }) => {
      const ctx = context();
      const flags: LsFlags = { recursive: opts.recursive, deleted: opts.deleted, long: opts.long, human: opts.humanReadable };
      await withClient(ctx, (client) => list(client, ctx, (path ?? "").replace(/^\/+/, "").normalize("NFC"), flags));
    });
}

async function list(client: DriveClient, ctx: CommandContext, arg: string, flags: LsFlags): Promise<void> {
  if (flags.deleted) return listDeleted(client, ctx, arg, flags);
  const show = (f: FileInfo) => (ctx.json ? printJson(ctx, fileFields(f)) : ctx.stdout.write(`${listingLine(f, flags)}\n`));
  if (flags.recursive) {
    for await (const f of listFiles(client, ctx, arg)) show(f);
    return;
  }
  const folder = arg.replace(/\/+$/, "");
  const prefix = folder ? `${folder}/` : "";
  // Folders met once each, entries or implicit: bounded by what one folder holds.
  const folders = new Set<string>();
  let any = false;
  for await (const f of listFiles(client, ctx, prefix)) {
    any = true;
    const rest = f.path.slice(prefix.length);
    const slash = rest.indexOf("/");
    const child = slash < 0 ? rest : rest.slice(0, slash);
    const isFolderEntry = slash < 0 && f.kind === EntryKind.FOLDER;
    if (slash >= 0 || isFolderEntry) {
      if (folders.has(child)) continue;
      folders.add(child);
    }
    if (slash >= 0) showImplicit(ctx, prefix + child, flags);
    else show(f);
  }
  // "ls name" where name is a file, as ls shows one file; "ls name/" insists on a folder.
  if (!any && folder && !arg.endsWith("/")) {
    const file = await statOrNull(client, ctx, folder);
    if (!file) throw new CliError("not_found", `${folder}: no such file or folder`);
    if (file.kind !== EntryKind.FOLDER) show(file);
  }
}

function showImplicit(ctx: CommandContext, path: string, flags: ListingOptions): void {
  if (ctx.json) printJson(ctx, implicitFolderFields(path));
  else ctx.stdout.write(`${listingLine({ implicitFolder: path }, flags)}\n`);
}

/** Every live entry whose path starts with prefix, a page at a time. */
export async function* listFiles(client: DriveClient, ctx: CommandContext, prefix: string): AsyncGenerator<FileInfo> {
  let pageToken = "";
  do {
    const page = await client.files.listFiles({ prefix, pageToken }, { signal: ctx.signal });
    yield* page.files;
    pageToken = page.nextPageToken;
  } while (pageToken);
}

async function statOrNull(client: DriveClient, ctx: CommandContext, path: string): Promise<FileInfo | null> {
  try {
    return (await client.files.stat({ path }, { signal: ctx.signal })).file ?? null;
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.NotFound) return null;
    throw err;
  }
}
