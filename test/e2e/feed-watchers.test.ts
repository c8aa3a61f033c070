import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import { client, putEmpty, rssOf, watcherCrowd } from "../support/feed-e2e.js";

/** Polls `ok` every 20 ms for up to `ms`. */
async function until(ok: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const N = 1000;

describe(`${N} watchers on one instance`, () => {
  let server: TestServer;
  beforeAll(async () => {
    // debug: the hub logs each journal read it makes, which this test counts.
    server = await startDriveServer({ args: ["--log-level", "debug"] });
  });
  afterAll(() => server?.stop());

  const reads = () => server.logs().split("\n").filter((l) => l.includes('"journal read for watchers"')).length;
  /** Waits until the hub has made no read for a while: the joins' own look-ups are done. */
  async function quiet() {
    let last = -1;
    while (last !== reads()) {
      last = reads();
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  it("costs bounded memory, one journal query per wake-up, and absorbs a reconnect storm", async () => {
    const writer = client(server.url, server.adminToken);
    try {
      const cursor = (await writer.feed.getCursor({})).cursor;
      const before = await rssOf(server.process.pid!);
      const clients: Parameters<typeof watcherCrowd>[4] = [];
      const crowd = watcherCrowd(server.url, server.adminToken, N, cursor, clients);
      await crowd.caughtUp();
      await quiet();
      const during = await rssOf(server.process.pid!);
      console.log(`server RSS ${(before / 2 ** 20).toFixed(1)} MiB before, ${(during / 2 ** 20).toFixed(1)} MiB with ${N} watchers: ${((during - before) / N / 1024).toFixed(1)} KiB per watcher`);
      // Bounded: well under a megabyte a stream.
      expect(during - before).toBeLessThan(N * 200 * 1024);

      const queries = reads();
      await putEmpty(writer, "crowd/one");
      await until(() => crowd.received("crowd/one") === N, `all ${N} watchers to get the change`);
      await quiet();
      expect(reads() - queries).toBe(1);

      // A storm: every stream drops and comes back at once, from where it was (the clients stay connected, as after a blip).
      const at = (await writer.feed.getCursor({})).cursor;
      await crowd.stop();
      const storm = watcherCrowd(server.url, server.adminToken, N, at, clients);
      await storm.caughtUp();
      expect(storm.errors).toEqual([]);
      await putEmpty(writer, "crowd/two");
      await until(() => storm.received("crowd/two") === N, "the storm to get a live change");
      await storm.stop();
      expect(storm.errors).toEqual([]);
      expect(crowd.errors).toEqual([]);
      crowd.close();
      expect(server.logs()).not.toMatch(/"level":"error"/);
    } finally {
      writer.close();
    }
  });
});
