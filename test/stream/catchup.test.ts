import t from 'tap';
import { sleep } from '../../support/util.js';
import { startServer, type Server } from '../support/server.js';
import { connect } from '../support/sse.js';
import { wsConnect } from '../support/ws.js';

/** alice's token allows the topic her streams name. */
const readsNews = { topics: ['news'] };

/** Publishes `n` notifications cycling through targets alice may and may not see; returns alice-visible ids. */
async function publishMix(s: Server, n: number, tag: string): Promise<number[]> {
  const visible: number[] = [];
  for (let i = 0; i < n; i++) {
    const target = [{ user: 'alice' }, { user: 'bob' }, { broadcast: true }, { topic: 'news' }, { topic: 'other' }][i % 5]!;
    const r = await s.publish({ ...target, title: `${tag} ${i}` });
    if (r.status !== 201) throw new Error(`publish failed: ${JSON.stringify(r.body)}`);
    if (!('user' in target && target.user === 'bob') && !('topic' in target && target.topic === 'other')) visible.push(r.body.id);
  }
  return visible;
}

t.test('reconnecting with Last-Event-ID replays exactly what was missed, then goes live', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const first = await connect(s, 'alice', '?topic=news', {}, readsNews);
  const before = await publishMix(s, 5, 'before');
  await first.waitFor((e) => e.length === before.length);
  t.same(first.ids(), before);
  first.close();

  const gap = await publishMix(s, 10, 'gap');
  const again = await connect(s, 'alice', '?topic=news', { 'last-event-id': String(before.at(-1)) }, readsNews);
  t.teardown(() => again.close());
  await again.waitFor((e) => e.length === gap.length);
  t.same(again.ids(), gap, 'the missed ones, in order');
  t.same(again.events.map((e) => e.id), gap.map(String), 'each with its id');

  const live = await publishMix(s, 5, 'live');
  await again.waitFor((e) => e.length === gap.length + live.length);
  await sleep(100);
  t.same(again.ids(), [...gap, ...live], 'then live, nothing doubled');
});

t.test('?lastEventId= works for clients that cannot set headers', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const ids = await publishMix(s, 6, 'x');
  const c = await connect(s, 'alice', `?topic=news&lastEventId=${ids[1]}`, {}, readsNews);
  t.teardown(() => c.close());
  await c.waitFor((e) => e.length === ids.length - 2);
  t.same(c.ids(), ids.slice(2));
});

t.test('publishes racing the replay are neither lost nor doubled', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  /** `total` publishes from `workers` concurrent publishers (bounded, so a loaded machine copes). */
  const publishMany = async (total: number, workers: number, body: (i: number) => Record<string, unknown>) => {
    const ids: number[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (next < total) ids.push((await s.publish(body(next++))).body.id);
      }),
    );
    return ids;
  };
  const gapIds = await publishMany(2000, 20, (i) => ({ broadcast: true, title: `gap ${i}` }));
  // Connect from the very start while a second stream of publishes is in flight.
  const racing = publishMany(300, 10, (i) => ({ user: 'alice', title: `race ${i}` }));
  const c = await connect(s, 'alice', '', { 'last-event-id': '0' });
  t.teardown(() => c.close());
  const raceIds = await racing;
  const expected = [...gapIds, ...raceIds].sort((a, b) => a - b);
  t.equal(expected.length, 2300);
  await c.waitFor((e) => e.length >= expected.length, 20_000);
  await sleep(200);
  t.equal(c.ids().length, expected.length, 'no duplicate');
  t.same(c.ids(), expected, 'every id, in order');
});

t.test('a client too far behind is told to reload, then continues live', async (t) => {
  const s = await startServer({ env: { HERALD_CATCHUP_LIMIT: '5' } });
  t.teardown(() => s.close());
  const ids = await publishMix(s, 20, 'old');
  const c = await connect(s, 'alice', '?topic=news', { 'last-event-id': '1' }, readsNews);
  t.teardown(() => c.close());
  await c.waitFor((e) => e.length >= 1);
  const head = await s.store.lastId();
  t.same(c.events[0], { type: 'reload', id: String(head), data: { reason: 'catchup-limit', lastId: head } });
  t.equal(c.ids().length, 0, 'no partial replay');
  const live = await s.publish({ user: 'alice', title: 'after reload' });
  await c.waitFor((e) => e.length >= 2);
  t.same(c.ids(), [live.body.id]);
  t.ok(ids.length > 5);

  // Within the limit, the replay is complete.
  const near = await connect(s, 'alice', '?topic=news', { 'last-event-id': String(ids.at(-3)) }, readsNews);
  t.teardown(() => near.close());
  await near.waitFor((e) => e.length >= 3);
  t.same(near.ids(), [ids.at(-2), ids.at(-1), live.body.id]);
});

t.test('a Last-Event-ID the server never issued gets a reload, not silence', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  await s.publish({ user: 'alice', title: 'one' });
  const c = await connect(s, 'alice', '', { 'last-event-id': '999999' });
  t.teardown(() => c.close());
  await c.waitFor((e) => e.length >= 1);
  t.match(c.events[0], { type: 'reload', id: '1', data: { reason: 'ahead-of-server', lastId: 1 } });
  const next = await s.publish({ user: 'alice', title: 'two' });
  await c.waitFor((e) => e.length >= 2);
  t.same(c.ids(), [next.body.id]);
});

t.test('a replay far larger than the pending-bytes bound is paced, not cut', async (t) => {
  const s = await startServer({ env: { HERALD_MAX_PENDING_BYTES: '16384' } });
  t.teardown(() => s.close());
  const body = 'x'.repeat(1000);
  const ids: number[] = [];
  for (let i = 0; i < 1000; i++) ids.push((await s.publish({ user: 'alice', title: `n${i}`, body })).body.id);
  const c = await connect(s, 'alice', '', { 'last-event-id': '0' });
  t.teardown(() => c.close());
  await c.waitFor((e) => e.length >= ids.length, 20_000);
  t.same(c.ids(), ids, 'about 1 MB replayed through a 16 KiB bound, in order, once');
  const ws = await wsConnect(s, 'alice', '?lastEventId=0');
  t.teardown(() => ws.close());
  await ws.waitFor((f) => f.filter((x) => x.event === 'notification').length >= ids.length, 20_000);
  t.same(ws.ids(), ids, 'the same over WebSocket');
});
