// The SSE write path: events go straight to the socket (no chunked framing), several events of one
// tick share a write, and a catch-up replay is not mistaken for a slow consumer.
import t from 'tap';
import { connect, parseSse, rawGet, startServer, tokenFor } from './helpers.js';

t.test('the stream is close-delimited: no chunk framing between events', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const first = await s.publish({ user: 'ann', title: 'one' });
  const res = await rawGet(`${s.url}/events`, { authorization: `Bearer ${tokenFor('ann')}`, 'last-event-id': String(first.body.id - 1) }, 400);
  t.equal(res.status, 200);
  t.notOk(res.headers['transfer-encoding'], 'not chunked');
  t.equal(res.headers.connection, 'close', 'the body ends with the connection');
  t.match(res.text, /^retry: \d+\n\nid: \d+\nevent: notification\ndata: \{.*\}\n\n$/, 'nothing but SSE on the wire');
});

t.test('notifications published together all arrive, in id order, on every stream', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const clients = await Promise.all(['a', 'b', 'c'].map((u) => connect(s, u)));
  t.teardown(() => clients.forEach((c) => c.close()));
  // Concurrent publishes share group commits, so several events reach each socket in one tick.
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => s.publish({ broadcast: true, title: `n${i}` })));
  const ids = results.map((r) => r.body.id as number).sort((x, y) => x - y);
  for (const c of clients) {
    await c.waitFor((e) => e.length >= 40, 15_000);
    t.same(c.ids(), ids);
  }
});

t.test('a replay larger than HERALD_MAX_PENDING_BYTES is delivered, not cut as a slow consumer', async (t) => {
  const s = await startServer({ env: { HERALD_MAX_PENDING_BYTES: '1024' } });
  t.teardown(() => s.close());
  const ids: number[] = [];
  for (let i = 0; i < 60; i++) ids.push((await s.publish({ user: 'zoe', title: `missed ${i}`, body: 'x'.repeat(100) })).body.id);
  // ~15 KB of replay against a 1 KiB limit.
  const res = await rawGet(`${s.url}/events`, { authorization: `Bearer ${tokenFor('zoe')}`, 'last-event-id': '0' }, 1000);
  t.same(
    parseSse(res.text).map((e) => Number(e.id)),
    ids,
  );
  const c = await connect(s, 'zoe', '', { 'last-event-id': String(ids[29]) });
  t.teardown(() => c.close());
  await c.waitFor((e) => e.length >= 30, 10_000);
  const live = await s.publish({ user: 'zoe', title: 'live after the replay' });
  await c.waitFor((e) => e.length >= 31, 10_000);
  t.same(c.ids(), [...ids.slice(30), live.body.id], 'the rest of the replay, then live');
});
