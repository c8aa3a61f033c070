import { once } from "node:events";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BufferTurns } from "../../shared/io/buffer-turns.js";

const SIZE = 64 * 1024 * 1024;

describe("BufferTurns when the peer goes away", () => {
  let dir: string;
  let file: string;
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "drive-turns-"));
    file = join(dir, "big");
    await writeFile(file, Buffer.alloc(SIZE, 7));
    process.on("unhandledRejection", onUnhandled);
  });
  afterAll(async () => {
    process.off("unhandledRejection", onUnhandled);
    await rm(dir, { recursive: true, force: true });
  });

  /** A real TCP peer that reads `readFirst` bytes, then resets the connection. */
  async function sendToPeerThatResets(readFirst: number): Promise<unknown> {
    const server = net.createServer((s) => {
      let got = 0;
      s.on("data", (c: Buffer) => {
        got += c.length;
        if (got >= readFirst) s.resetAndDestroy();
      });
      s.on("error", () => {});
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const socket = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
    socket.on("error", () => {}); // the test looks at what send() says
    await once(socket, "connect");
    const fh = await open(file, "r");
    try {
      const turns = new BufferTurns(socket, 1024 * 1024);
      await turns.send(fh, 0, SIZE);
      await turns.flush();
      return null;
    } catch (err) {
      return err;
    } finally {
      await fh.close();
      socket.destroy();
      server.close();
    }
  }

  it.each([0, 1, 3 * 1024 * 1024])("rejects send() or flush() once, with nothing unhandled, after %i bytes", async (readFirst) => {
    const err = await sendToPeerThatResets(readFirst);
    expect(err).toBeInstanceOf(Error);
    // Let any stray rejection surface before looking.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(unhandled).toEqual([]);
  });
});
