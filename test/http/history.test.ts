import t from 'tap';
import { sleep } from '../../support/util.js';
import { startServer } from '../support/server.js';
import { connect } from '../support/sse.js';

/** alice's token allows the topic her history queries name. */
const readsNews = { topics: ['news'] };

t.test('history: newest first, cursor pages, per-user read state, unread filter and count', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const ids: number[] = [];
  for (let i = 0; i < 7; i++) ids.push((await s.publish({ user: 'alice', title: `n${i}` })).body.id);
  const bcast = (await s.publish({ broadcast: true, title: 'to all' })).body.id as number;
  const news = (await s.publish({ topic: 'news', title: 'headline' })).body.id as number;
  await s.publish({ user: 'bob', title: 'for bob only' });

  const p1 = await s.request('GET', '/notifications?limit=3', 'alice');
  t.equal(p1.status, 200);
  t.same(p1.body.items.map((n: { id: number }) => n.id), [bcast, ids[6], ids[5]], 'newest first, no topic unless asked');
  t.equal(p1.body.nextCursor, String(ids[5]));
  const p2 = await s.request('GET', `/notifications?limit=3&before=${p1.body.nextCursor}`, 'alice');
  t.same(p2.body.items.map((n: { id: number }) => n.id), [ids[4], ids[3], ids[2]]);
  const p3 = await s.request('GET', `/notifications?limit=3&before=${p2.body.nextCursor}`, 'alice');
  t.same(p3.body.items.map((n: { id: number }) => n.id), [ids[1], ids[0]]);
  t.equal(p3.body.nextCursor, null, 'last page');
  t.notOk(JSON.stringify([p1, p2, p3]).includes('for bob only'), "never another user's notification");
  t.notOk('users' in p1.body.items[0], 'no recipient lists in history');

  const withTopic = await s.request('GET', '/notifications?topic=news&limit=2', 'alice', undefined, readsNews);
  t.same(withTopic.body.items.map((n: { id: number }) => n.id), [news], '?topic= filters: that topic only');
  const stream = await s.request('GET', '/notifications?topic=news&scope=stream&limit=3', 'alice', undefined, readsNews);
  t.same(stream.body.items.map((n: { id: number }) => n.id), [news, bcast, ids[6]], 'scope=stream: what a stream with that topic shows');
  t.equal((await s.request('GET', '/notifications?topic=news&scope=all', 'alice', undefined, readsNews)).status, 400, 'scope is topics or stream');

  t.same((await s.request('GET', '/notifications/unread-count', 'alice')).body, { count: 8 });
  t.same((await s.request('GET', '/notifications/unread-count?topic=news', 'alice', undefined, readsNews)).body, { count: 1 }, 'of that topic only');
  t.same((await s.request('GET', '/notifications/unread-count?topic=news&scope=stream', 'alice', undefined, readsNews)).body, { count: 9 }, 'scope=stream: own, broadcasts and the topic');
  t.same((await s.request('POST', `/notifications/${ids[0]}/read`, 'alice')).body, { id: ids[0], read: true });
  t.same((await s.request('POST', `/notifications/${bcast}/read`, 'alice')).body, { id: bcast, read: true });
  t.same((await s.request('GET', '/notifications/unread-count', 'alice')).body, { count: 6 });
  t.same((await s.request('GET', '/notifications/unread-count', 'carol')).body, { count: 1 }, 'a broadcast read by alice is unread for carol');
  const unread = await s.request('GET', '/notifications?unread=true', 'alice');
  t.same(unread.body.items.map((n: { id: number }) => n.id), [ids[6], ids[5], ids[4], ids[3], ids[2], ids[1]]);
  const all = await s.request('GET', '/notifications', 'alice');
  t.same(all.body.items.filter((n: { read: boolean }) => n.read).map((n: { id: number }) => n.id), [bcast, ids[0]]);

  const ra = await s.request('POST', '/notifications/read-all', 'alice');
  t.equal(ra.status, 200);
  t.ok(ra.body.upTo >= news);
  t.same((await s.request('GET', '/notifications/unread-count?topic=news', 'alice', undefined, readsNews)).body, { count: 0 });
  t.same((await s.request('GET', '/notifications/unread-count', 'carol')).body, { count: 1 }, 'read-all is per user');
  const later = (await s.publish({ user: 'alice', title: 'after read-all' })).body.id as number;
  t.same((await s.request('GET', '/notifications?unread=true', 'alice')).body.items.map((n: { id: number }) => n.id), [later]);
});

t.test('delete hides a notification for that user only', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const b = (await s.publish({ broadcast: true, title: 'to all' })).body.id as number;
  const r = await s.request('DELETE', `/notifications/${b}`, 'alice');
  t.equal(r.status, 204);
  t.same((await s.request('GET', '/notifications', 'alice')).body.items, []);
  t.equal((await s.request('GET', '/notifications', 'bob')).body.items.length, 1, 'bob still has it');
  t.equal((await s.request('DELETE', `/notifications/${b}`, 'alice')).status, 404, 'already deleted');
  t.equal((await s.request('POST', `/notifications/${b}/read`, 'alice')).status, 404);
  // A deleted notification is not replayed on catch-up either.
  const c = await connect(s, 'alice', '', { 'last-event-id': '0' });
  t.teardown(() => c.close());
  const next = (await s.publish({ user: 'alice', title: 'next' })).body.id as number;
  await c.waitFor((e) => e.length >= 1);
  t.same(c.ids(), [next]);
});

t.test("nobody reads or changes another user's notification", async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const mine = (await s.publish({ user: 'alice', title: 'private' })).body.id as number;
  t.equal((await s.request('POST', `/notifications/${mine}/read`, 'mallory')).status, 404);
  t.equal((await s.request('DELETE', `/notifications/${mine}`, 'mallory')).status, 404);
  t.equal((await s.request('POST', '/notifications/424242/read', 'alice')).status, 404, 'unknown id');
  const list = await s.request('GET', '/notifications', 'alice');
  t.same(list.body.items.map((n: { id: number; read: boolean }) => [n.id, n.read]), [[mine, false]], 'untouched');
  const c = await connect(s, 'mallory', '', { 'last-event-id': '0' });
  t.teardown(() => c.close());
  await sleep(200);
  t.same(c.events, [], 'catch-up shows mallory nothing of alice');
});

t.test('read and delete in one tab reach the other tabs', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const tab1 = await connect(s, 'alice');
  const tab2 = await connect(s, 'alice');
  const bob = await connect(s, 'bob');
  t.teardown(() => [tab1, tab2, bob].forEach((c) => c.close()));
  const a = (await s.publish({ user: 'alice', title: 'a' })).body.id as number;
  const b = (await s.publish({ broadcast: true, title: 'b' })).body.id as number;
  await tab2.waitFor((e) => e.length >= 2);

  await s.request('POST', `/notifications/${a}/read`, 'alice');
  await s.request('DELETE', `/notifications/${b}`, 'alice');
  await s.request('POST', '/notifications/read-all', 'alice');
  for (const tab of [tab1, tab2]) {
    await tab.waitFor((e) => e.length >= 5);
    t.same(
      tab.events.slice(2).map((e) => [e.type, e.data]),
      [
        ['read', { ids: [a] }],
        ['deleted', { id: b }],
        ['read', { all: true, upTo: b }],
      ],
    );
    // A MessageEvent's lastEventId is the stream's last id (the spec's, and eventsource 5's): an event
    // with no `id:` of its own leaves it where the last notification put it.
    t.same(tab.events.slice(2).map((e) => e.id), [String(b), String(b), String(b)], 'state events carry no id, so the resume point stays');
  }
  await sleep(100);
  t.equal(bob.of('read').length + bob.of('deleted').length, 0, "bob sees nothing of alice's changes");
});
