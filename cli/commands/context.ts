import { resolveCredentials } from "../config/client-config.js";
import { connectDrive, type DriveClient } from "../rpc/drive-client.js";

/** What every command gets from the global flags, resolved once in main.ts. */
export interface CommandContext {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly flags: { server?: string; token?: string };
  /** Aborted on the first Ctrl-C or SIGTERM. */
  readonly signal: AbortSignal;
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
  /** What `drive push -` reads. */
  readonly stdin: NodeJS.ReadStream;
}

/** Connects with the resolved credentials and closes the connection after fn. */
export async function withClient<T>(ctx: CommandContext, fn: (client: DriveClient) => Promise<T>): Promise<T> {
  const client = connectDrive(await resolveCredentials(ctx.flags));
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

/** One JSON object per line: the --json contract (see cli/ui/json-printer.ts). */
export function printJson(ctx: CommandContext, value: Record<string, unknown>): void {
  ctx.stdout.write(JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? Number(v) : v)) + "\n");
}
