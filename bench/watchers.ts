/**
 * Watchers (issue 9, section 6): the memory a WatchChanges stream costs the
 * server. Starts a real `drive server` (the embedded default), reads its
 * resident memory, opens BENCH_WATCHERS (1,000) streams over separate
 * HTTP/2 connections of at most 200 streams, waits until every one is live,
 * and reads it again: the difference over the count is the memory per
 * watcher. Then it times one commit reaching every watcher, and a reconnect
 * storm of all of them at once. Not a test: it prints figures and asserts
 * nothing. Run after npm run build (npm run bench:sync calls it).
 */
import { startDriveServer } from "../test/support/drive-server.js";
import { client, putEmpty, rssOf, watcherCrowd } from "../test/support/feed-e2e.js";

const N = Number(process.env.BENCH_WATCHERS ?? 1000);
const MiB = 2 ** 20;

async function until(ok: () => boolean): Promise<void> {
  while (!ok()) await new Promise((r) => setTimeout(r, 5));
}

export async function benchWatchers(): Promise<{ watchers: number; rssBeforeMiB: number; rssAfterMiB: number; kibPerWatcher: number; fanOutMs: number; stormMs: number }> {
  const server = await startDriveServer({ args: ["--log-level", "warn"] });
  const writer = client(server.url, server.adminToken);
  try {
    // Warm up the pool and the code paths, so they do not count as the watchers' memory.
    const warm = watcherCrowd(server.url, server.adminToken, 20, (await writer.feed.getCursor({})).cursor);
    await warm.caughtUp();
    await warm.stop();
    warm.close();
    const before = await rssOf(server.process.pid!);
    const clients: Parameters<typeof watcherCrowd>[4] = [];
    const crowd = watcherCrowd(server.url, server.adminToken, N, (await writer.feed.getCursor({})).cursor, clients);
    await crowd.caughtUp();
    const after = await rssOf(server.process.pid!);

    let t = performance.now();
    await putEmpty(writer, "bench/one");
    await until(() => crowd.received("bench/one") === N);
    const fanOutMs = performance.now() - t;

    const at = (await writer.feed.getCursor({})).cursor;
    await crowd.stop();
    t = performance.now();
    const storm = watcherCrowd(server.url, server.adminToken, N, at, clients);
    await storm.caughtUp();
    const stormMs = performance.now() - t;
    await storm.stop();
    storm.close();
    if (crowd.errors.length || storm.errors.length) throw new Error(`streams failed: ${String(crowd.errors[0] ?? storm.errors[0])}`);
    return {
      watchers: N,
      rssBeforeMiB: before / MiB,
      rssAfterMiB: after / MiB,
      kibPerWatcher: (after - before) / N / 1024,
      fanOutMs,
      stormMs,
    };
  } finally {
    writer.close();
    await server.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchWatchers();
  console.log(
    `watchers: ${r.watchers} streams; server RSS ${r.rssBeforeMiB.toFixed(1)} MiB before, ${r.rssAfterMiB.toFixed(1)} MiB with them: ` +
      `${r.kibPerWatcher.toFixed(1)} KiB per watcher; one commit reached all in ${r.fanOutMs.toFixed(0)} ms; ` +
      `a reconnect storm of all ${r.watchers} was live again in ${r.stormMs.toFixed(0)} ms`,
  );
}
