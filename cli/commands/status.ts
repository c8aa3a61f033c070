import { realpath } from "node:fs/promises";
import type { Command } from "commander";
import { CliError } from "../errors.js";
import type { SyncDeps } from "../sync/sync-deps.js";
import type { ConflictCopy, PendingOp } from "../sync/sync-values.js";
import type { SyncHalt } from "../sync/types.js";
import { printable } from "../ui/fit.js";
import { formatDuration } from "../ui/format.js";
import type { CommandContext } from "./context.js";
import { printJson } from "./context.js";

/** Pending operations listed one by one; past this, a count. */
const PENDING_SHOWN = 20;
/** Conflicted copies listed, the most recent. */
const CONFLICTS_SHOWN = 10;

export function registerStatus(program: Command, context: () => CommandContext): void {
  program
    .command("status")
    .description("show a sync root's last sync, why it halted, what is pending and its conflicted copies")
    .argument("[local]", "the sync root (default: this folder)")
    .addHelpText(
      "after",
      `
It reads what the last drive sync of the folder left in its state (no server
is asked): when it last finished, why it halted and how to go on, the
operations it left for the next run (files still being written, checks that
failed, errors), and the conflicted copies it made. With --json, one
{"type":"sync_status", ...} line. A folder that was never synced (no
.drive-sync marker in it) is an error (exit 3).`,
    )
    .action(async (local: string | undefined) => {
      const { syncDeps } = await import("../sync/sync-deps.js");
      await showStatus(syncDeps, context(), local ?? ".");
    });
}

/** What status reports, as --json prints it. */
export interface SyncStatus {
  root: string;
  server: string;
  remote: string;
  /** ISO time of the last sync that finished with nothing left; null: never. */
  last_sync: string | null;
  halted: (SyncHalt & { advice: string }) | null;
  pending: PendingOp[];
  conflicts: ConflictCopy[];
  /** Files and folders both sides agree on. */
  synced_entries: number;
  /** The marker is not the one this state wrote (copied from another root?). */
  marker_mismatch?: true;
}

export async function showStatus(deps: Pick<SyncDeps, "readMarker" | "openState">, ctx: CommandContext, dir: string): Promise<void> {
  const marker = await deps.readMarker(dir);
  if (!marker) throw new CliError("not_found", `${dir} is not a sync root (no .drive-sync)`);
  const localRoot = await realpath(dir);
  const state = await deps.openState({ server: marker.server, remoteRoot: marker.remote, localRoot }).catch((err: unknown) => {
    if (err instanceof CliError && /another drive sync is running/.test(err.message)) {
      throw new CliError(err.kind, `a drive sync is running on ${dir} now and holds its state: run drive status again once it ends (its own output says what it does)`, { cause: err });
    }
    throw err;
  });
  let status: SyncStatus;
  try {
    const { VALUES, haltAdvice, readValue } = await import("../sync/sync-values.js");
    const halt = readValue<SyncHalt>(state, VALUES.halt);
    status = {
      root: localRoot,
      server: marker.server,
      remote: marker.remote,
      last_sync: state.getValue(VALUES.lastSync) ?? null,
      halted: halt ? { ...halt, advice: haltAdvice(halt) } : null,
      pending: readValue<PendingOp[]>(state, VALUES.pending) ?? [],
      conflicts: readValue<ConflictCopy[]>(state, VALUES.conflicts) ?? [],
      synced_entries: state.synced.size,
      ...(state.getValue("marker") !== undefined && state.getValue("marker") !== marker.id ? { marker_mismatch: true as const } : {}),
    };
  } finally {
    await state.close();
  }
  if (ctx.json) printJson(ctx, { type: "sync_status", ...status });
  else ctx.stdout.write(statusText(status, Date.now()));
}

/** The plain report: a line a fact, the lists indented. */
export function statusText(s: SyncStatus, now: number): string {
  const lines = [`${printable(s.root)} <-> ${printable(s.remote || "/")} on ${s.server}`];
  lines.push(`last sync: ${s.last_sync ? `${s.last_sync} (${ago(now - Date.parse(s.last_sync))})` : "never finished"}`);
  lines.push(`synced: ${s.synced_entries} ${s.synced_entries === 1 ? "entry" : "entries"}`);
  if (s.marker_mismatch) lines.push("warning: the .drive-sync marker here is not the one this sync wrote: was it copied from another root?");
  if (s.halted) lines.push(`halted (${s.halted.reason}): ${printable(s.halted.message)}`, `  ${s.halted.advice}`);
  if (s.pending.length === 0) lines.push("pending: nothing");
  else {
    lines.push(`pending: ${s.pending.length}`);
    for (const p of s.pending.slice(0, PENDING_SHOWN)) lines.push(`  ${printable(pendingLine(p))}`);
    if (s.pending.length > PENDING_SHOWN) lines.push(`  and ${s.pending.length - PENDING_SHOWN} more (--json lists them all)`);
  }
  if (s.conflicts.length > 0) {
    lines.push(`conflicted copies (most recent last):`);
    for (const c of s.conflicts.slice(-CONFLICTS_SHOWN)) lines.push(`  ${c.time}  ${printable(c.path)} -> ${printable(c.to)}`);
  }
  return lines.join("\n") + "\n";
}

function pendingLine(p: PendingOp): string {
  if (p.op === "wait") return `${p.path}: still being written`;
  return `${p.op} ${p.path}${p.to !== undefined ? ` -> ${p.to}` : ""} (${p.why})${p.message ? `: ${p.message.replace(/\s*\n\s*/g, " ")}` : ""}`;
}

function ago(ms: number): string {
  return ms < 0 || Number.isNaN(ms) ? "just now" : `${formatDuration(ms)} ago`;
}
