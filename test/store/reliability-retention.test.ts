// Retention: a scheduled job deletes notifications older than HERALD_RETENTION_DAYS and, per user,
// direct notifications beyond HERALD_RETENTION_PER_USER. A catch-up that would have to step over a
// pruned notification is told to reload instead of silently skipping it.
import Database from 'better-sqlite3';
import t from 'tap';
import { historyIds, rawGet } from '../support/http.js';
import { startServer, type Server } from '../support/server.js';
import { connect, parseSse } from '../support/sse.js';
import { tokenFor } from '../support/tokens.js';
import { waitUntil } from '../support/wait.js';
import { wsConnect } from '../support/ws.js';

/** What a reconnecting client with Last-Event-ID `lastId` receives first (its catch-up); `claims` go in its token. */
async function catchUp(s: Server, user: string, lastId: number, query = '', claims: Record<string, unknown> = {}) {
  const res = await rawGet(`${s.url}/events${query}`, { authorization: `Bearer ${tokenFor(user, claims)}`, 'last-event-id': String(lastId) }, 500);
  // Without the unread count that ends every catch-up (test/stream/unread.test.ts has it).
  return parseSse(res.text)
    .filter((e) => e.event !== 'unread')
    .map((e) => ({ event: e.event, id: Number(e.id), data: JSON.parse(e.data) }));
}

/** The retention user's token allows the topic its queries name. */
const readsNews = { topics: ['news'] };

/** Makes rows `days` old, as the passing of time would: through a second connection to the same file. */
function age(s: Server, ids: number[], days: number): void {
  const db = new Database(s.config.store.location);
  try {
    db.pragma('busy_timeout = 5000');
    const then = new Date(Date.now() - days * 86_400_000).toISOString();
    db.prepare(`UPDATE notifications SET created_at = ? WHERE id IN (SELECT value FROM json_each(?))`).run(then, JSON.stringify(ids));
  } finally {
    db.close();
  }
}

t.test('notifications older than HERALD_RETENTION_DAYS are pruned; catch-up across them says reload', async (t) => {
  const s = await startServer({
    env: { HERALD_RETENTION_DAYS: '30', HERALD_RETENTION_PER_USER: '0', HERALD_RETENTION_INTERVAL_MS: '100' },
  });
  t.teardown(() => s.close());
  const keyed = { user: 'ret', title: 'old, with a key' };
  const old = [
    await s.publish(keyed, { 'idempotency-key': 'order-1' }),
    await s.publish({ topic: 'news', title: 'old topic' }),
    await s.publish({ broadcast: true, title: 'old broadcast' }),
    await s.publish({ users: ['ret', 'other'], title: 'old multi' }),
  ].map((r) => r.body.id as number);
  t.equal((await s.request('POST', `/notifications/${old[3]}/read`, 'ret')).status, 200);
  const fresh = [(await s.publish({ user: 'ret', title: 'fresh' })).body.id, (await s.publish({ topic: 'news', title: 'fresh topic' })).body.id];
  age(s, old, 40);
  age(s, fresh, 29);

  await waitUntil('the old ones to be pruned', async () => (await historyIds(s.url, 'ret')).length === 1);
  t.same(await historyIds(s.url, 'ret'), [fresh[0]], 'history keeps only what is younger than 30 days');
  t.same(await historyIds(s.url, 'ret', '&topic=news', readsNews), [fresh[1]], 'topic history too');
  t.same((await s.store.range(0, fresh[1]!)).map((n) => n.id), fresh, 'the old rows are deleted, not just hidden');
  t.equal(await s.store.prunedUpTo('anyone'), old[3], 'the horizon is the highest id pruned, for everyone');
  t.equal(await s.store.lastId(), fresh[1], 'the last id is unchanged');

  const fromBefore = await catchUp(s, 'ret', old[0]! - 1, '?topic=news', readsNews);
  t.same(fromBefore, [{ event: 'reload', id: fresh[1], data: { reason: 'pruned', lastId: fresh[1] } }], 'a catch-up from below the horizon is told to reload, not given a gapped replay');
  const fromHorizon = await catchUp(s, 'ret', old[3]!, '?topic=news', readsNews);
  t.same(fromHorizon.map((e) => [e.event, e.id]), fresh.map((id) => ['notification', id]), 'a catch-up from the horizon on misses nothing: plain replay');

  const again = await s.publish(keyed, { 'idempotency-key': 'order-1' });
  t.equal(again.status, 201, 'the Idempotency-Key of a pruned notification was pruned with it');
  t.ok(again.body.id > fresh[1]!, 'and the retry is a new notification with a new id');
});

t.test('HERALD_RETENTION_PER_USER keeps each user’s newest direct notifications', async (t) => {
  const s = await startServer({
    env: { HERALD_RETENTION_DAYS: '0', HERALD_RETENTION_PER_USER: '3', HERALD_RETENTION_INTERVAL_MS: '100' },
  });
  t.teardown(() => s.close());
  const ids: number[] = [];
  ids.push((await s.publish({ users: ['capped', 'other'], title: 'shared' })).body.id);
  for (let i = 0; i < 5; i++) ids.push((await s.publish({ user: 'capped', title: `own ${i}` })).body.id);
  const everyone = (await s.publish({ broadcast: true, title: 'not a direct one' })).body.id as number;
  const [shared, c2, c3, c4, c5, c6] = ids as [number, number, number, number, number, number];

  await waitUntil('the cap to apply', async () => (await historyIds(s.url, 'capped')).length === 4);
  t.same(await historyIds(s.url, 'capped'), [everyone, c6, c5, c4], 'capped keeps its 3 newest direct ones (broadcasts do not count)');
  t.same(await historyIds(s.url, 'other'), [everyone, shared], 'another recipient of a pruned notification still has it');
  t.same((await s.store.range(0, everyone)).map((n) => n.id), [shared, c4, c5, c6, everyone], 'rows no one has any more are deleted');
  t.equal(await s.store.prunedUpTo('capped'), c3, 'the cap horizon is per user');
  t.equal(await s.store.prunedUpTo('other'), 0, 'other users are not affected by it');
  t.ok(c2 < c3);

  t.same((await catchUp(s, 'capped', 0)).map((e) => [e.event, e.data.reason]), [['reload', 'pruned']], 'capped, from below its horizon: reload');
  t.same((await catchUp(s, 'capped', c3)).map((e) => e.id), [c4, c5, c6, everyone], 'capped, from its horizon: replay');
  t.same((await catchUp(s, 'other', 0)).map((e) => e.id), [shared, everyone], 'other: a full replay, no reload');

  // The check is in the subscription, so the WebSocket transport tells the client the same.
  const ws = await wsConnect(s, 'capped');
  t.teardown(() => ws.close());
  await ws.command('resume', { lastEventId: 0 });
  t.same(
    ws.frames.filter((f) => f.event !== 'reply' && f.event !== 'unread'),
    [
      { event: 'ready', id: everyone, data: {} },
      { event: 'reload', id: everyone, data: { reason: 'pruned', lastId: everyone } },
    ],
    'over WebSocket too',
  );
});

t.test('pruning everything keeps ids increasing, and a client at the head needs no reload', async (t) => {
  const s = await startServer({ env: { HERALD_RETENTION_DAYS: '0', HERALD_RETENTION_PER_USER: '0' } });
  t.teardown(() => s.close());
  const a = (await s.publish({ user: 'u', title: 'a' })).body.id as number;
  const b = (await s.publish({ user: 'u', title: 'b' })).body.id as number;
  t.equal(await s.store.prune({ olderThan: new Date(Date.now() + 60_000) }), 2, 'prune reports what it deleted');
  t.same(await s.store.range(0, b), []);
  t.equal(await s.store.lastId(), b, 'the last id survives its row');
  t.equal(await s.store.prunedUpTo('u'), b);

  const client = await connect(s, 'u', '', { 'last-event-id': String(b) });
  t.teardown(() => client.close());
  const c = (await s.publish({ user: 'u', title: 'c' })).body.id as number;
  t.ok(c > b, 'the next id is above every pruned one');
  await client.waitFor((e) => e.length >= 1);
  t.same(client.events.map((e) => [e.type, e.id]), [['notification', String(c)]], 'a client that saw everything just continues live');
  t.same((await catchUp(s, 'u', a)).map((e) => e.data.reason), ['pruned'], 'one that missed a pruned one reloads');
});

t.test('large prunes go in batches and delete exactly what is due', async (t) => {
  const s = await startServer({ env: { HERALD_RETENTION_DAYS: '0', HERALD_RETENTION_PER_USER: '0' } });
  t.teardown(() => s.close());
  const insert = async (n: number) => {
    const results = await Promise.all(Array.from({ length: n }, (_, i) => s.store.insert({ title: `n${i}`, target: { users: ['bulk'] } })));
    return results.map((r) => (r.status === 'created' ? r.notification.id : 0)).sort((a, b) => a - b);
  };
  const ids = await insert(2500);
  t.equal(await s.store.prune({ perUser: 100 }), 2400, 'a cap of 100 deletes the 2,400 oldest');
  t.same(await historyIds(s.url, 'bulk'), ids.slice(2400).reverse(), 'the 100 newest are left');
  t.equal(await s.store.prunedUpTo('bulk'), ids[2399]);
  t.equal(await s.store.prune({ perUser: 100 }), 0, 'a second run has nothing to do');
  const more = await insert(1500);
  t.equal(await s.store.prune({ olderThan: new Date(Date.now() + 60_000) }), 1600, 'age pruning takes everything due, over several batches');
  t.equal(await s.store.prunedUpTo('bulk'), more.at(-1));
  const stopped = new AbortController();
  stopped.abort();
  await insert(10);
  t.equal(await s.store.prune({ olderThan: new Date(Date.now() + 60_000), signal: stopped.signal }), 0, 'an aborted prune stops before its first batch');
});
