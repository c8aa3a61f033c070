import { setMaxListeners } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import type { Change } from "../../gen/drive/v1/feed_pb.js";
import { ContentHashKind } from "../../gen/drive/v1/types_pb.js";
import { connectDrive, type DriveClient } from "../../cli/rpc/drive-client.js";
import { decodeCursor } from "../../server/journal/cursor.js";
import { createLogger } from "../../server/log.js";
import { startEmbeddedPostgres, type EmbeddedDatabase } from "../../server/metadata/embedded-postgres.js";

/** A PostgreSQL of its own for servers that share it (several instances, restarts). */
export async function sharedPostgres(): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "drive-feed-pg-"));
  const db: EmbeddedDatabase = await startEmbeddedPostgres(dir, createLogger("error"));
  return {
    url: db.url,
    async stop() {
      await db.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export const client = (server: string, token: string): DriveClient => connectDrive({ server, token });

const EMPTY_HASH = new Blake3Hasher().update(Buffer.alloc(0)).digestBuffer();

/** One committed change at `path`: an empty file, which CreateUpload commits at once (no store involved). */
export async function putEmpty(c: DriveClient, path: string): Promise<void> {
  const res = await c.uploads.createUpload({ path, size: 0n, contentHash: EMPTY_HASH, contentHashKind: ContentHashKind.BLAKE3, chunkCount: 0n, chunks: [] });
  if (!res.committed) throw new Error(`the empty file ${path} was not committed at once`);
}

/** The journal seq a change's cursor names (tests only: cursors are opaque to clients). */
export function seqOf(cursor: string, userId = 1): number {
  const pos = decodeCursor(cursor, userId)!;
  return [...pos.seqs.values()][0]!;
}

/** Asserts what a watcher saw: every expected path exactly once, in strictly increasing cursor order. */
export function checkExactlyOnce(changes: Change[], expected: string[]): string | null {
  const seqs = changes.map((c) => seqOf(c.cursor));
  for (let i = 1; i < seqs.length; i++) if (seqs[i]! <= seqs[i - 1]!) return `out of order at ${i}: ${seqs[i - 1]} then ${seqs[i]}`;
  const seen = changes.map((c) => c.file!.path).sort();
  const want = [...expected].sort();
  if (JSON.stringify(seen) !== JSON.stringify(want)) return `saw ${seen.length} changes, expected ${want.length}`;
  return null;
}

/** Resident memory of a process, in bytes. */
export async function rssOf(pid: number): Promise<number> {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, "utf8"));
  return Number(m![1]) * 1024;
}

export interface WatcherCrowd {
  /** Resolves once every stream has sent its caught_up heartbeat. */
  caughtUp(): Promise<void>;
  /** How many streams have received a change at this path. */
  received(path: string): number;
  /** Errors any stream ended with (a cut, a refusal). */
  errors: unknown[];
  /** Ends every stream (the clients stay connected). */
  stop(): Promise<void>;
  close(): void;
}

/**
 * `n` WatchChanges streams from `cursor`, spread over connections of at most
 * 200 streams (the server allows 256 per HTTP/2 connection), as that many
 * separate watchers would open them. Shared by the 1,000-watcher test and
 * bench/watchers.ts.
 */
export function watcherCrowd(server: string, token: string, n: number, cursor: string, clients: DriveClient[] = []): WatcherCrowd {
  while (clients.length < Math.ceil(n / 200)) clients.push(client(server, token));
  const seen = new Map<string, number>();
  const errors: unknown[] = [];
  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // one signal for all n streams
  let live = 0;
  let wake: () => void = () => {};
  const streams = Array.from({ length: n }, async (_, i) => {
    let up = false;
    try {
      for await (const res of clients[i % clients.length]!.feed.watchChanges({ cursor, heartbeatSeconds: 60 }, { signal: abort.signal })) {
        if (res.event.case === "heartbeat" && res.event.value.caughtUp && !up) {
          up = true;
          live++;
          wake();
        }
        if (res.event.case === "change") seen.set(res.event.value.file!.path, (seen.get(res.event.value.file!.path) ?? 0) + 1);
      }
    } catch (err) {
      if (!abort.signal.aborted) errors.push(err);
    }
  });
  return {
    errors,
    caughtUp: () =>
      new Promise<void>((resolve, reject) => {
        const check = () => (live === n ? resolve() : errors.length ? reject(errors[0]) : undefined);
        wake = check;
        check();
      }),
    received: (path) => seen.get(path) ?? 0,
    async stop() {
      abort.abort();
      await Promise.all(streams);
    },
    close: () => clients.forEach((c) => c.close()),
  };
}
