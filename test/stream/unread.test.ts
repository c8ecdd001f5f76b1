// The unread count on the stream (contract B): sent once a stream has caught up, then after every
// read, read-all or delete of its user, on both transports and across instances; never after each
// notification (the client counts those as one more each).
import t from 'tap';
import { startBackends } from '../support/backends.js';
import { sleep } from '../../support/util.js';
import { startServer, type Server } from '../support/server.js';
import { connect } from '../support/sse.js';
import { wsConnect } from '../support/ws.js';

const toAlice = (s: Server, title = 'n') => s.publish({ user: 'alice', title }).then((r) => r.body.id as number);

t.test('SSE: the count after catch-up, then after each read, read-all and delete', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const first = await toAlice(s);
  await toAlice(s);
  await s.publish({ topic: 'news', title: 'a topic one' });

  const plain = await connect(s, 'alice');
  const resumed = await connect(s, 'alice', '?lastEventId=0&topic=news', {}, { topics: ['news'] });
  t.teardown(() => (plain.close(), resumed.close()));
  await plain.unread.waitFor((c) => c.length === 1);
  await resumed.waitFor((e) => e.length === 3);
  await resumed.unread.waitFor((c) => c.length === 1);
  t.same(plain.unread.items, [2], 'a live stream: its user’s own and broadcast notifications');
  t.same(resumed.unread.items, [3], 'after the replay, its topics counted too');

  const third = await toAlice(s);
  await plain.waitFor((e) => e.some((x) => x.data.id === third));
  await sleep(100);
  t.same(plain.unread.items, [2], 'no count after a notification: the client adds it');

  await s.request('POST', `/notifications/${first}/read`, 'alice');
  await plain.unread.waitFor((c) => c.length === 2);
  await resumed.unread.waitFor((c) => c.length === 2);
  t.same([plain.unread.items[1], resumed.unread.items[1]], [2, 3], 'after a read, each stream its own count');
  await s.request('DELETE', `/notifications/${third}`, 'alice');
  await plain.unread.waitFor((c) => c.length === 3);
  t.equal(plain.unread.items[2], 1, 'after a delete');
  await s.request('POST', '/notifications/read-all', 'alice');
  await plain.unread.waitFor((c) => c.length === 4);
  await resumed.unread.waitFor((c) => c.length === 4);
  t.same([plain.unread.items[3], resumed.unread.items[3]], [0, 0], 'after read-all');

  const bob = await connect(s, 'bob');
  t.teardown(() => bob.close());
  await bob.unread.waitFor((c) => c.length === 1);
  await s.request('POST', '/notifications/read-all', 'alice');
  await plain.unread.waitFor((c) => c.length === 5);
  await sleep(100);
  t.same(bob.unread.items, [0], "alice's reads send bob nothing");
});

t.test('WebSocket: the same frames, after ready and the replay', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const a = await toAlice(s);
  const b = await toAlice(s);
  const ws = await wsConnect(s, 'alice', '?lastEventId=0');
  t.teardown(() => ws.close());
  await ws.waitFor((f) => f.some((x) => x.event === 'unread'));
  t.same(
    ws.frames.map((f) => [f.event, f.id]),
    [['ready', 0], ['notification', a], ['notification', b], ['unread', undefined]],
    'ready, the replay, then the count',
  );
  t.same(ws.of('unread')[0], { event: 'unread', data: { count: 2 } }, 'no id');
  t.same((await ws.command('read', { id: a })).data, { id: a, read: true });
  await ws.waitFor((f) => f.filter((x) => x.event === 'unread').length === 2);
  t.same(ws.of('unread')[1].data, { count: 1 });
});

t.test('a count read while a notification is on its way is not off by it', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const ids = [await toAlice(s), await toAlice(s)];
  const c = await connect(s, 'alice');
  t.teardown(() => c.close());
  await c.unread.waitFor((x) => x.length === 1);
  // A read and a burst of publishes at once: whatever order they reach the stream in, the count the
  // client ends with (last count, plus one per notification after it) matches the store's.
  const burst = Array.from({ length: 20 }, () => toAlice(s));
  await s.request('POST', `/notifications/${ids[0]}/read`, 'alice');
  await Promise.all(burst);
  await c.waitFor(() => c.ids().length === 20);
  await c.unread.waitFor((x) => x.length >= 2);
  await sleep(200);
  // What a client computes: the last count, plus each notification that arrived after it.
  const expected = (await s.request('GET', '/notifications/unread-count', 'alice')).body.count as number;
  t.equal(expected, 21);
  t.equal(clientCount(c), expected, 'the client’s count is the store’s');
});

/** The count a client shows: the last `unread`, plus one per notification received after it. */
function clientCount(c: Awaited<ReturnType<typeof connect>>): number {
  return c.steps.reduce<number>((n, step) => (step === 'notification' ? n + 1 : step), 0);
}

t.test('two instances: a read on one updates the count of streams on the other', async (t) => {
  const { redis, postgres } = await startBackends(t);
  const env = { HERALD_STORE: await postgres.newDatabase(), HERALD_BUS: redis.url };
  const a = await startServer({ env });
  t.teardown(() => a.close());
  const b = await startServer({ env });
  t.teardown(() => b.close());
  const id = await toAlice(a);
  await toAlice(a);
  const onB = await connect(b, 'alice');
  const wsOnB = await wsConnect(b, 'alice');
  await wsOnB.command('ping');
  t.teardown(() => (onB.close(), wsOnB.close()));
  await onB.unread.waitFor((c) => c.length === 1);
  t.same(onB.unread.items, [2]);
  await a.request('POST', `/notifications/${id}/read`, 'alice');
  await onB.unread.waitFor((c) => c.length === 2);
  await wsOnB.waitFor((f) => f.filter((x) => x.event === 'unread').length === 2);
  t.equal(onB.unread.items[1], 1, 'SSE on the other instance');
  t.same(wsOnB.of('unread')[1].data, { count: 1 }, 'WebSocket on the other instance');
});
