import { open, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { startDriveServer, type TestServer } from "./drive-server.js";
import { s3Env, s3Missing, s3ServerEnv, testS3Client, uniqueBucket, type S3TestEnv } from "./s3-env.js";
import { startThrottleProxy, type ThrottleProxy } from "./throttle-proxy.js";

/** A drive server in one store mode, with what the tests need to reach around it. */
export interface ModeServer {
  server: TestServer;
  /** The URL the CLI is given as --server. */
  via: string;
  /**
   * A throttle proxy on the data plane, when asked for. In local mode the
   * store's URLs are the server's, so control calls pass through it too; in
   * S3 mode it sits in front of the store and sees only part PUTs and GETs.
   */
  proxy: ThrottleProxy | null;
  /** Flips one bit at `offset` of the one stored object of `size` bytes, as bit rot would. */
  damageObject(size: number, offset: number): Promise<void>;
  /** Starts the server again on the same port, data and store (see TestServer.restart); `server` is then the new one. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface StoreMode {
  name: "local" | "s3";
  /** Why the mode cannot run here; "" when it can. */
  skip: string;
  start(opts?: { args?: string[]; proxy?: boolean }): Promise<ModeServer>;
}

const local: StoreMode = {
  name: "local",
  skip: "",
  async start(opts = {}) {
    const server = await startDriveServer({ args: opts.args ?? [] });
    const proxy = opts.proxy ? await startThrottleProxy({ target: server.url }) : null;
    const m: ModeServer = {
      server,
      via: proxy?.url ?? server.url,
      proxy,
      damageObject: (size, offset) => damageLocalObject(server.dataDir, size, offset),
      async restart() {
        m.server = await m.server.restart();
      },
      async stop() {
        await proxy?.close();
        await m.server.stop();
      },
    };
    return m;
  },
};

function s3Mode(env: S3TestEnv | null): StoreMode {
  return {
    name: "s3",
    skip: env ? "" : s3Missing,
    async start(opts = {}) {
      const bucket = uniqueBucket("e2e");
      const proxy = opts.proxy ? await startThrottleProxy({ target: env!.endpoint }) : null;
      // Presigned URLs name the proxy; SigV4 signs the Host header, which the proxy passes on unchanged.
      const server = await startDriveServer({ args: opts.args ?? [], env: s3ServerEnv(env!, bucket, proxy?.url) });
      const m: ModeServer = {
        server,
        via: server.url,
        proxy,
        damageObject: (size, offset) => damageS3Object(env!, bucket, size, offset),
        async restart() {
          m.server = await m.server.restart();
        },
        async stop() {
          await m.server.stop();
          await proxy?.close();
        },
      };
      return m;
    },
  };
}

/** Every store the end-to-end suites run against. */
export const storeModes: StoreMode[] = [local, s3Mode(s3Env)];

async function damageLocalObject(dataDir: string, size: number, offset: number): Promise<void> {
  // The local store keeps an object as its part files plus a manifest (see store-layout.ts).
  const objects = join(dataDir, "blobs", "objects");
  const found: Array<{ dir: string; parts: Array<{ partNumber: number; etag: string; size: number }> }> = [];
  for (const entry of await readdir(objects, { recursive: true })) {
    if (!entry.endsWith("manifest.json")) continue;
    const dir = join(objects, entry, "..");
    const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as {
      size: number;
      parts: Array<{ partNumber: number; etag: string; size: number }>;
    };
    if (manifest.size === size) found.push({ dir, parts: manifest.parts });
  }
  if (found.length !== 1) throw new Error(`expected one stored object of ${size} bytes, found ${found.length}`);
  let start = 0;
  for (const part of found[0]!.parts) {
    if (offset < start + part.size) return flipBit(join(found[0]!.dir, `${part.partNumber}.${part.etag}`), offset - start);
    start += part.size;
  }
  throw new Error(`offset ${offset} is past the object's end`);
}

async function flipBit(file: string, at: number): Promise<void> {
  const fh = await open(file, "r+");
  try {
    const one = Buffer.alloc(1);
    await fh.read(one, 0, 1, at);
    one[0] = one[0]! ^ 0x01;
    await fh.write(one, 0, 1, at);
  } finally {
    await fh.close();
  }
}

/** Rewrites the object in place with one bit flipped: same key, same size, other bytes. */
async function damageS3Object(env: S3TestEnv, bucket: string, size: number, offset: number): Promise<void> {
  const client = testS3Client(env);
  const matches: string[] = [];
  for await (const item of client.listObjectsV2(bucket, "ns/", true) as AsyncIterable<{ name?: string; size?: number }>) {
    if (item.name && item.size === size) matches.push(item.name);
  }
  if (matches.length !== 1) throw new Error(`expected one stored object of ${size} bytes, found ${matches.length}`);
  const chunks: Buffer[] = [];
  for await (const c of await client.getObject(bucket, matches[0]!)) chunks.push(c as Buffer);
  const body = Buffer.concat(chunks);
  body[offset] = body[offset]! ^ 0x01;
  await client.putObject(bucket, matches[0]!, body, body.length);
}
