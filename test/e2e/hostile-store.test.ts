import { randomBytes } from "node:crypto";
import { mkdtemp, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliError } from "../../cli/errors.js";
import { connectDrive } from "../../cli/rpc/drive-client.js";
import { createAgents, destroyAgents, getRange, PartHttpError } from "../../cli/transfer/part-http.js";
import { pullFile } from "../../cli/transfer/pull-file.js";
import { runDrive } from "../support/drive-cli.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import { startHostileStore, type Answer, type HostileStore } from "../support/hostile-store.js";
import { s3Env, s3ServerEnv, uniqueBucket } from "../support/s3-env.js";
import { storeModes } from "../support/store-modes.js";

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const SIZE = 2 * PART + 12_345; // two GETs of merged chunks

/** Lies that leave the bytes wrong: after a retry or two, an integrity error. */
const WRONG: Answer[] = ["extra", "extra-chunked", "short-chunked", "short-length", "ignore-range", "wrong-range", "lying-range", "flip"];
/** Lies that look like a broken connection: retried, then unavailable. */
const BROKEN: Answer[] = ["cut", "stall"];

/** raw: the client's own socket GETs; node: the node:http fallback, which a first chunked answer switches to. */
const PATHS = ["raw", "node"] as const;

function blake3(b: Buffer): Buffer {
  const h = new Blake3Hasher();
  h.update(b);
  return h.digestBuffer();
}

for (const mode of storeModes) describe.skipIf(mode.skip)(`a pull trusts only bytes it verified (${mode.name} store)`, () => {
  let hostile: HostileStore;
  let server: TestServer;
  let dir: string;
  let data: Buffer;

  beforeAll(async () => {
    hostile = await startHostileStore();
    // The server signs URLs naming the hostile store, which forwards to the real one.
    if (mode.name === "local") {
      server = await startDriveServer({ args: ["--public-url", hostile.url] });
      hostile.target = server.url;
    } else {
      server = await startDriveServer({ env: s3ServerEnv(s3Env!, uniqueBucket("hostile"), hostile.url) });
      hostile.target = s3Env!.endpoint;
    }
    dir = await mkdtemp(join(tmpdir(), "drive-hostile-"));
    data = randomBytes(SIZE);
    await writeFile(join(dir, "src.bin"), data);
    const push = await runDrive(["--json", "push", "--part-size", "5M", "src.bin", "h/src.bin"], { server: server.url, token: server.adminToken, cwd: dir });
    expect(push.code, push.stderr + push.stdout).toBe(0);
  });
  afterAll(async () => {
    await server?.stop();
    await hostile?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Pulls in-process, with a short read timeout so a stall costs little. */
  async function pull(local: string, answer: (n: number) => Answer): Promise<{ err: unknown; retries: number }> {
    hostile.answer = answer;
    const client = connectDrive({ server: server.url, token: server.adminToken });
    let retries = 0;
    try {
      await pullFile(
        client,
        // reuse: false, or the pull would take every chunk from src.bin beside it.
        { remote: "h/src.bin", local: join(dir, local), reuse: false, concurrency: 2, partAttempts: 4, readTimeoutMs: 400, signal: new AbortController().signal },
        (e) => void (e.type === "part_retry" && retries++),
      );
      return { err: null, retries };
    } catch (err) {
      return { err, retries };
    } finally {
      client.close();
      hostile.answer = () => "honest";
    }
  }

  for (const path of PATHS) {
    // On the node path the first GET answers chunked, honestly; the lies come after.
    const first = path === "node" ? 1 : 0;
    const lying = (lie: Answer, times: number) => (n: number) => (path === "node" && n === 0 ? "chunked" : n < first + times ? lie : "honest");

    it.each([...WRONG, ...BROKEN])(`${path}: one %s answer is retried, and the file is right`, async (lie) => {
      const name = `once-${path}-${lie}.bin`;
      const r = await pull(name, lying(lie, 1));
      expect(r.err).toBeNull();
      expect((await readFile(join(dir, name))).equals(data)).toBe(true);
    });

    it.each([...WRONG, ...BROKEN])(`${path}: a store that always answers %s fails the pull and leaves the destination alone`, async (lie) => {
      const name = `always-${path}-${lie}.bin`;
      const old = Buffer.from("the previous contents\n");
      await writeFile(join(dir, name), old);
      const r = await pull(name, lying(lie, Infinity));
      expect(r.err).toBeInstanceOf(CliError);
      expect((r.err as CliError).kind).toBe(WRONG.includes(lie) ? "integrity" : "unavailable");
      expect((r.err as Error).message).not.toMatch(/\n/);
      expect(r.retries).toBeGreaterThan(0);
      expect((await readFile(join(dir, name))).equals(old)).toBe(true);
    });
  }

  it("the issue's case, by the binary: chunk 0 plus 1,000 bytes, over chunk 1 already fetched, is retried and the file is right", async () => {
    // Chunk 0's first two answers (raw, then node:http, which the chunked answer switches to) come once
    // chunk 1 is on disk, and carry 1,000 bytes more: written, they would land on chunk 1.
    let lies = 0;
    hostile.answer = (_n, first) => (first === 0 && lies++ < 2 ? "extra-chunked-late" : "honest");
    const r = await runDrive(["--json", "pull", "--no-reuse", "--concurrency", "2", "h/src.bin", "late.bin"], { server: server.url, token: server.adminToken, cwd: dir });
    hostile.answer = () => "honest";
    expect(lies).toBeGreaterThanOrEqual(2);
    if (r.code === 0) expect((await readFile(join(dir, "late.bin"))).equals(data), "exit 0 with wrong bytes").toBe(true);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.summary!.retries).toBeGreaterThan(0);
  });

  it("the issue's case, by the binary: chunked, then chunk 0 plus 1,000 bytes, exits 5 and writes nothing", async () => {
    const old = Buffer.from("before\n");
    await writeFile(join(dir, "issue.bin"), old);
    hostile.answer = (n) => (n === 0 ? "chunked" : "extra-chunked");
    const r = await runDrive(["--json", "pull", "--no-reuse", "--concurrency", "1", "h/src.bin", "issue.bin"], { server: server.url, token: server.adminToken, cwd: dir });
    hostile.answer = () => "honest";
    expect(r.code, r.stderr + r.stdout).toBe(5);
    expect(r.summary).toBeUndefined();
    expect(r.lines.at(-1)).toMatchObject({ type: "exit_error", code: "integrity", exit_code: 5 });
    expect((await readFile(join(dir, "issue.bin"))).equals(old)).toBe(true);

    // Run again against an honest store, it completes from what verified, and is right.
    const again = await runDrive(["--json", "pull", "--no-reuse", "h/src.bin", "issue.bin"], { server: server.url, token: server.adminToken, cwd: dir });
    expect(again.code, again.stderr + again.stdout).toBe(0);
    expect((await readFile(join(dir, "issue.bin"))).equals(data)).toBe(true);
    expect((await readdir(dir)).filter((n) => n.startsWith(".issue.bin."))).toEqual([]);
  });
});

describe("a chunk GET never writes outside its chunk", () => {
  const OBJECT = randomBytes(3 * MiB);
  const CHUNK: [number, number] = [MiB, 2 * MiB];
  let hostile: HostileStore;
  let dir: string;

  beforeAll(async () => {
    hostile = await startHostileStore(OBJECT);
    dir = await mkdtemp(join(tmpdir(), "drive-bounded-"));
  });
  afterAll(async () => {
    await hostile?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it.each(PATHS.flatMap((path) => (["extra", "extra-chunked", "wrong-range", "lying-range", "ignore-range"] as const).map((lie) => [path, lie] as const)))(
    "%s: a %s answer leaves every byte outside the chunk as it was",
    async (path, lie) => {
      const file = join(dir, `${path}-${lie}`);
      const sentinel = Buffer.alloc(OBJECT.length, 0xaa);
      await writeFile(file, sentinel);
      const agents = createAgents(1, 2000);
      if (path === "node") agents.raw = null;
      hostile.answer = () => lie;
      const fh = await open(file, "r+");
      let err: unknown = null;
      try {
        await getRange({
          url: `${hostile.url}/object?X-Amz-Signature=abc`,
          headers: {},
          offset: CHUNK[0],
          size: CHUNK[1] - CHUNK[0],
          hash: blake3(OBJECT.subarray(...CHUNK)),
          fd: fh.fd,
          agents,
          signal: new AbortController().signal,
          onBytes: () => {},
        });
      } catch (e) {
        err = e;
      } finally {
        await fh.close();
        destroyAgents(agents);
      }
      expect(err).toBeInstanceOf(PartHttpError);
      expect((err as PartHttpError).kind).toBe("untrusted");
      const after = await readFile(file);
      expect(after.subarray(0, CHUNK[0]).equals(sentinel.subarray(0, CHUNK[0]))).toBe(true);
      expect(after.subarray(CHUNK[1]).equals(sentinel.subarray(CHUNK[1]))).toBe(true);
    },
  );
});
