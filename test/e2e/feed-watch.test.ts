import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Change } from "../../gen/drive/v1/feed_pb.js";
import type { DriveClient } from "../../cli/rpc/drive-client.js";
import { followChanges } from "../../cli/feed/follow.js";
import { runDrive } from "../support/drive-cli.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import { checkExactlyOnce, client, putEmpty, seqOf, sharedPostgres } from "../support/feed-e2e.js";
import { bearer, connectGrpc } from "../support/grpc-client.js";

/** Follows from `cursor` in the background until `count` changes came; resolves with them. */
function collect(c: DriveClient, cursor: string, count: number, opts: { prefix?: string } = {}) {
  const abort = new AbortController();
  const changes: Change[] = [];
  const done = (async () => {
    for await (const step of followChanges(c, { cursor, prefix: opts.prefix, signal: abort.signal, heartbeatSeconds: 1 })) {
      changes.push(...step.changes);
      if (changes.length >= count) break;
    }
    return changes;
  })();
  return { changes, done, stop: () => abort.abort() };
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe("the change feed across real server processes on one PostgreSQL", () => {
  let pg: Awaited<ReturnType<typeof sharedPostgres>>;
  let a: TestServer;
  let b: TestServer;
  let token: string;
  const clients: DriveClient[] = [];
  const open = (s: TestServer) => {
    const c = client(s.url, token);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    pg = await sharedPostgres();
    // A short idle timeout, so that a quiet stream that survives it proves the pings keep it.
    const args = ["--idle-timeout", "400ms", "--ping-timeout", "2s"];
    const started = await Promise.all([0, 1].map(() => startDriveServer({ args, env: { DRIVE_DATABASE_URL: pg.url } })));
    [a, b] = [started[0]!, started[1]!];
    token = a.adminToken || b.adminToken;
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all([a?.stop(), b?.stop()]);
    await pg?.stop();
  });

  it("N writers on two instances commit at once while watchers stream: each sees every change once, in cursor order", async () => {
    const writers = 4;
    const each = 12;
    const start = (await open(a).feed.getCursor({})).cursor;
    const onA = collect(open(a), start, writers * each);
    const onB = collect(open(b), start, writers * each);
    // A stock gRPC peer, watching through instance B.
    const grpc = connectGrpc(b.url);
    const viaGrpc: Array<Record<string, any>> = [];
    const call = (grpc.feed as any).watchChanges({ cursor: start, heartbeatSeconds: 1 }, bearer(token));
    const grpcDone = new Promise<void>((resolve, reject) => {
      call.on("data", (m: Record<string, any>) => {
        if (m.change) viaGrpc.push(m.change);
        if (viaGrpc.length === writers * each) resolve();
      });
      call.on("error", (err: Error) => (viaGrpc.length === writers * each ? resolve() : reject(err)));
    });
    const expected: string[] = [];
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        const c = open(w % 2 ? b : a);
        for (let i = 0; i < each; i++) {
          const path = `multi/w${w}/${i}`;
          expected.push(path);
          await putEmpty(c, path);
        }
      }),
    );
    for (const watcher of [onA, onB]) expect(checkExactlyOnce(await within(watcher.done, 20_000, "the watcher"), expected)).toBeNull();
    await within(grpcDone, 20_000, "the gRPC watcher");
    call.cancel();
    grpc.close();
    expect(viaGrpc.map((c) => c.cursor)).toEqual(onA.changes.map((c) => c.cursor));
    expect(viaGrpc[0]).toMatchObject({ op: "CHANGE_OP_PUT", file: { kind: "ENTRY_KIND_FILE" } });
  });

  it("drive changes --follow prints a change committed after it started; killed mid-stream, it resumes from its last cursor", async () => {
    const writer = open(b);
    const env = { server: a.url, token };
    const total = 15;
    let seen = 0;
    let writing: Promise<void> | undefined;
    // No --cursor: it starts at the current end, so only what is committed after it started shows.
    await putEmpty(writer, "cli/before");
    const killed = await runDrive(["--json", "changes", "--follow", "--prefix", "cli/"], {
      ...env,
      onLine: (line, child) => {
        if (line.type === "cursor" && !writing) {
          writing = (async () => {
            for (let i = 0; i < total; i++) await putEmpty(writer, `cli/${i}`);
          })();
        }
        if (line.type === "change" && ++seen === 5) child.kill("SIGKILL");
      },
    });
    expect(killed.signal).toBe("SIGKILL");
    await writing;
    const first = killed.lines.filter((l) => l.type === "change");
    expect(first.map((l) => l.path)).toEqual(Array.from({ length: first.length }, (_, i) => `cli/${i}`));
    const resumed = await runDrive(["--json", "changes", "--prefix", "cli/", "--cursor", first.at(-1)!.cursor], env);
    expect(resumed.code, resumed.stderr).toBe(0);
    const rest = resumed.lines.filter((l) => l.type === "change");
    expect([...first, ...rest].map((l) => l.path)).toEqual(Array.from({ length: total }, (_, i) => `cli/${i}`));
    const end = resumed.lines.at(-1)!;
    expect(end).toMatchObject({ type: "cursor", caught_up: true });

    // Ctrl-C: it prints the last cursor and exits 0.
    const interrupted = runDrive(["--json", "changes", "--follow", "--cursor", end.cursor], {
      ...env,
      onLine: (line, child) => {
        if (line.type === "change") child.kill("SIGINT");
      },
    });
    await putEmpty(writer, "cli/last");
    const stopped = await interrupted;
    expect(stopped.code, stopped.stderr).toBe(0);
    const change = stopped.lines.find((l) => l.type === "change")!;
    expect(change.path).toBe("cli/last");
    expect(stopped.lines.at(-1)).toMatchObject({ type: "cursor", cursor: change.cursor });

    // Plain lines, for people: one per change, then the cursor.
    const plain = await runDrive(["changes", "--prefix", "cli/", "--cursor", end.cursor], env);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} {2}put\s+r1\s+cli\/last\ncursor {2}\S+\n$/);
  });

  it("a follower rides through a restart of its server and loses and repeats nothing", async () => {
    const writer = open(b);
    const watcher = open(a);
    const start = (await watcher.feed.getCursor({})).cursor;
    const run = collect(watcher, start, 12, { prefix: "restart/" });
    for (let i = 0; i < 6; i++) await putEmpty(writer, `restart/${i}`);
    while (run.changes.length < 3) await sleep(20);
    a = await a.restart();
    for (let i = 6; i < 12; i++) await putEmpty(writer, `restart/${i}`);
    const got = await within(run.done, 30_000, "the follower after the restart");
    expect(checkExactlyOnce(got, Array.from({ length: 12 }, (_, i) => `restart/${i}`))).toBeNull();
  });

  it("keeps a quiet stream open past the idle timeout: the HTTP/2 pings keep it", async () => {
    const c = open(a);
    const abort = new AbortController();
    const stream = c.feed.watchChanges({ cursor: (await c.feed.getCursor({})).cursor, heartbeatSeconds: 300 }, { signal: abort.signal })[Symbol.asyncIterator]();
    expect((await stream.next()).value?.event.value).toMatchObject({ caughtUp: true });
    await sleep(1500); // several idle timeouts of 400 ms, with nothing sent either way
    await putEmpty(open(b), "idle/after");
    const next = await within(stream.next(), 10_000, "the change on the idle stream");
    expect(next.value?.event.case).toBe("change");
    expect(seqOf((next.value!.event.value as Change).cursor)).toBeGreaterThan(0);
    abort.abort();
  });
});
