// A small reconnect storm against the built server: SSE and WebSocket streams that reconnect by
// themselves with their last id (bench/storm-load.ts, the clients of the bench's storm scenario), a
// publisher retrying with idempotency keys, the server killed with kill -9 mid-publish and restarted
// on the same port and data. Every stream gets every notification once, in order, and the replays
// cost a bounded number of store reads (the recent-events ring, src/stream/recent.ts).
import { rmSync } from 'node:fs';
import t from 'tap';
import { tempDir } from '../../support/util.js';
import { SteadyPublisher, StormStreams } from '../../bench/storm-load.js';
import { spawnServer } from '../support/server.js';
import { jwtSecret, publisherKey } from '../support/tokens.js';
import { waitUntil } from '../support/wait.js';

const sse = 300;
const ws = 30;

/** Herald's replay counters from /metrics, by `<counter>.<label>`. */
async function replayCounters(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^herald_replay_(ring|store_reads)_total\{\w+="(\w+)"\} (\d+)/gm)) out[`${m[1]}.${m[2]}`] = Number(m[3]);
  return out;
}

t.test('after kill -9 and a restart, every stream resumes with every notification once, from few store reads', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // One client address resuming 330 streams at once: the per-address resume rate must allow it.
  const env = { HERALD_DATA_DIR: dir, HERALD_RETRY_MS: '300', HERALD_RESUME_RATE_PER_IP: '0' };
  const first = await spawnServer(env);
  t.teardown(() => first.stop('SIGKILL'));
  const port = Number(new URL(first.url).port);
  const streams = new StormStreams(port, jwtSecret, 300);
  t.teardown(() => streams.stop());
  // One in 11 over the WebSocket: 30 of 330.
  await streams.open('storm-', sse + ws, 11);
  t.equal(streams.stats().connected, sse + ws, 'every stream is open');

  const publisher = new SteadyPublisher(port, publisherKey, 100);
  t.teardown(() => publisher.stop());
  await waitUntil('50 acknowledged publishes', () => publisher.acked.length >= 50, 30_000);
  const exit = await first.stop('SIGKILL');
  t.equal(exit.signal, 'SIGKILL', 'killed mid-publish');
  const ackedBeforeKill = Math.max(...publisher.acked);
  streams.watchFor(ackedBeforeKill);

  const second = await spawnServer({ ...env, PORT: String(port) });
  t.teardown(() => second.stop('SIGKILL'));
  const restartedAt = performance.now();
  await waitUntil('every stream caught up', () => streams.stats().caughtUpAt > 0, 30_000);
  t.comment(`all ${sse + ws} streams open and caught up ${(performance.now() - restartedAt).toFixed(0)} ms after the restart`);
  const counters = await replayCounters(second.url);
  await publisher.stop();
  const lastAcked = Math.max(...publisher.acked);
  t.ok(lastAcked > ackedBeforeKill, 'the publisher went on after the restart');
  await waitUntil('every stream at the last acknowledged id', () => streams.stats().minLast >= lastAcked, 30_000);

  const stats = streams.stats();
  t.equal(stats.duplicates, 0, 'no notification twice');
  t.equal(stats.gaps, 0, 'none skipped');
  t.equal(stats.reloads, 0, 'no reload');
  t.equal(stats.refused, 0, 'no resume refused');
  t.ok(stats.reconnects >= sse + ws, 'every stream was cut and reconnected');
  const resumes = (counters['ring.hit'] ?? 0) + (counters['ring.miss'] ?? 0) + (counters['ring.bypass'] ?? 0);
  t.ok(resumes >= sse + ws, `every stream resumed with its last id (${JSON.stringify(counters)})`);
  t.equal(counters['ring.bypass'] ?? 0, 0, 'none needed a catch-up of its own from the store');
  const reads = (counters['store_reads.catchup'] ?? 0) + (counters['store_reads.range'] ?? 0) + (counters['store_reads.states'] ?? 0);
  t.ok(reads <= resumes / 4, `${reads} store reads for ${resumes} resumes`);
});
