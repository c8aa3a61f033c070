import { randomBytes } from "node:crypto";
import { mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Blake3Hasher } from "@napi-rs/blake-hash";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createAgents, destroyAgents, getRange, PartHttpError, type Agents } from "../../cli/transfer/part-http.js";

const OBJECT = randomBytes(3 * 1024 * 1024 + 17);

function blake3(b: Buffer): Buffer {
  const h = new Blake3Hasher();
  h.update(b);
  return h.digestBuffer();
}

type Behaviour = "ok" | "chunked" | "ignore-range" | "cut" | "403" | "503" | "slow";

/** A real HTTP/1.1 server whose answers to ranged GETs misbehave on request. */
async function startStore() {
  let behaviour: Behaviour = "ok";
  let connections = 0;
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? "")!;
    const [start, end] = [Number(m[1]), Number(m[2]) + 1];
    const body = OBJECT.subarray(start, end);
    const range = `bytes ${start}-${end - 1}/${OBJECT.length}`;
    switch (behaviour) {
      case "ok":
        res.writeHead(206, { "content-length": body.length, "content-range": range });
        return res.end(body);
      case "chunked":
        res.writeHead(206, { "transfer-encoding": "chunked", "content-range": range });
        return res.end(body);
      case "ignore-range":
        res.writeHead(200, { "content-length": OBJECT.length });
        return res.end(OBJECT);
      case "cut":
        res.writeHead(206, { "content-length": body.length, "content-range": range });
        res.write(body.subarray(0, body.length >> 1));
        return setTimeout(() => res.destroy(), 20);
      case "403":
      case "503": {
        const xml = `<Error><Code>${behaviour === "403" ? "AccessDenied" : "SlowDown"}</Code></Error>`;
        res.writeHead(Number(behaviour), { "content-length": Buffer.byteLength(xml) });
        return res.end(xml);
      }
      case "slow":
        res.writeHead(206, { "content-length": body.length, "content-range": range });
        return res.write(body.subarray(0, 1000)); // and never the rest
    }
  });
  server.on("connection", () => connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/object?X-Amz-Signature=abc`,
    set: (b: Behaviour) => void (behaviour = b),
    stats: () => ({ connections, requests }),
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

describe("ranged GETs on raw sockets", () => {
  let store: Awaited<ReturnType<typeof startStore>>;
  let dir: string;
  let file: string;
  let agents: Agents;

  beforeAll(async () => {
    store = await startStore();
    dir = await mkdtemp(join(tmpdir(), "drive-rawget-"));
    file = join(dir, "out.bin");
  });
  afterEach(() => destroyAgents(agents));
  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function fetchChunks(ranges: Array<[number, number]>, signal = new AbortController().signal) {
    await writeFile(file, Buffer.alloc(OBJECT.length));
    let bytes = 0;
    const fh = await open(file, "r+");
    try {
      for (const [start, end] of ranges) {
        await getRange({
          url: store.url,
          headers: {},
          offset: start,
          size: end - start,
          hash: blake3(OBJECT.subarray(start, end)),
          fd: fh.fd,
          agents,
          signal,
          onBytes: (n) => (bytes += n),
        });
      }
    } finally {
      await fh.close();
    }
    return bytes;
  }

  const thirds: Array<[number, number]> = [
    [0, 1024 * 1024],
    [1024 * 1024, 2 * 1024 * 1024],
    [2 * 1024 * 1024, OBJECT.length],
  ];

  it("writes each range in place and reuses one connection", async () => {
    agents = createAgents(2);
    store.set("ok");
    const before = store.stats();
    expect(await fetchChunks([...thirds].reverse())).toBe(OBJECT.length);
    expect((await readFile(file)).equals(OBJECT)).toBe(true);
    expect(store.stats().connections - before.connections).toBe(1);
    expect(agents.raw).not.toBeNull();
  });

  it("hands over to node:http when the server answers chunked", async () => {
    agents = createAgents(2);
    store.set("chunked");
    await fetchChunks(thirds);
    expect((await readFile(file)).equals(OBJECT)).toBe(true);
    expect(agents.raw).toBeNull();
  });

  it("refuses a 200 with the whole object for a range past byte 0, writing nothing there", async () => {
    agents = createAgents(2);
    store.set("ignore-range");
    const err = await fetchChunks([thirds[1]!]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PartHttpError);
    expect((err as PartHttpError).kind).toBe("untrusted");
    expect((err as Error).message).toMatch(/ignored Range/);
    expect((await readFile(file)).equals(Buffer.alloc(OBJECT.length))).toBe(true);
  });

  it("takes a 200 with exactly the range asked for at byte 0", async () => {
    agents = createAgents(2);
    store.set("ignore-range");
    await fetchChunks([[0, OBJECT.length]]);
    expect((await readFile(file)).equals(OBJECT)).toBe(true);
  });

  it.each([
    ["cut", "retryable"],
    ["403", "expired"],
    ["503", "retryable"],
  ] as const)("a %s answer is a %s PartHttpError", async (behaviour, kind) => {
    agents = createAgents(2);
    store.set(behaviour);
    const err = await fetchChunks([thirds[0]!]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PartHttpError);
    expect((err as PartHttpError).kind).toBe(kind);
    if (behaviour !== "cut") expect((err as Error).message).toMatch(/AccessDenied|SlowDown/);
    // The connection is not reused after a broken response; the next request works.
    store.set("ok");
    await fetchChunks([thirds[0]!]);
  });

  it("stops at once when aborted mid-body", async () => {
    agents = createAgents(2);
    store.set("slow");
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const started = Date.now();
    const err = await fetchChunks([thirds[0]!], ac.signal).catch((e: unknown) => e);
    expect((err as Error).name).toBe("AbortError");
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
