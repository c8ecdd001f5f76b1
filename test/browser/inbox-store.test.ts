// The headless HeraldInbox store (packages/client) in Node against a real server, with the
// `eventsource` package as its EventSource and Node's BroadcastChannel between two stores as two tabs.
import { EventSource } from 'eventsource';
import t, { type Test } from 'tap';
import { HeraldInbox, type InboxItem, type InboxOptions } from '../../packages/client/src/herald-client.js';
import { sleep } from '../../support/util.js';
import { startServer, type Server } from '../support/server.js';
import { tokenFor } from '../support/tokens.js';
import { waitUntil } from '../support/wait.js';
import type { Json } from '../support/http.js';

class MemoryStorage {
  readonly map = new Map<string, string>();
  getItem(k: string) {
    return this.map.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.map.set(k, v);
  }
}

let channels = 0;

/** A started store for `user`, stopped when `t` ends; `live` and `caughtUp` events are recorded. */
function inbox(t: Test, s: Server, user: string, opts: Partial<InboxOptions> = {}) {
  const store = new HeraldInbox({ url: s.url, token: tokenFor(user), EventSource, storage: new MemoryStorage(), channel: `test-${process.pid}-${channels}`, ...opts });
  const seen = { live: [] as InboxItem[], caughtUp: [] as InboxItem[][], notified: 0 };
  store.on('live', (n) => seen.live.push(n));
  store.on('caughtUp', (items) => seen.caughtUp.push(items));
  store.subscribe(() => seen.notified++);
  t.teardown(() => store.stop());
  store.start();
  return { store, seen };
}

const ids = (items: readonly InboxItem[]) => items.map((n) => n.id);

async function history(s: Server, user: string): Promise<Json[]> {
  const res = await fetch(`${s.url}/notifications`, { headers: { authorization: `Bearer ${tokenFor(user)}` } });
  return ((await res.json()) as Json).items;
}

t.test('history, then live: one list newest first, the unread count kept without asking again', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const old = [];
  for (let i = 0; i < 3; i++) old.push((await s.publish({ user: 'amy', title: `old ${i}` })).body.id as number);
  const { store, seen } = inbox(t, s, 'amy');
  await waitUntil('connected, history and count', () => {
    const snap = store.getSnapshot();
    return snap.state === 'connected' && snap.items.length === 3 && snap.unreadCount === 3;
  });
  const before = store.getSnapshot();
  t.equal(store.getSnapshot(), before, 'the same snapshot while nothing changes');
  t.ok(Object.isFrozen(before) && Object.isFrozen(before.items), 'snapshots are immutable');

  const live = (await s.publish({ user: 'amy', title: 'live one' })).body.id as number;
  await waitUntil('the live one', () => store.getSnapshot().items.length === 4);
  const after = store.getSnapshot();
  t.not(after, before, 'a new snapshot after a change');
  t.same(ids(after.items), [live, ...old.reverse()]);
  t.equal(after.unreadCount, 4, 'a new notification counts one more');
  t.same(ids(seen.live), [live], 'told as live, once');
  t.same(seen.caughtUp, [], 'a fresh stream has nothing to catch up on');
  t.ok(seen.notified > 0, 'subscribers heard of it');
});

t.test('loadMore pages back through history until there is no more', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const all = [];
  for (let i = 0; i < 5; i++) all.push((await s.publish({ user: 'ben', title: `n${i}` })).body.id as number);
  const { store } = inbox(t, s, 'ben', { pageSize: 2 });
  await waitUntil('the first page', () => store.getSnapshot().items.length === 2);
  t.ok(store.getSnapshot().hasMore);
  await store.loadMore();
  await store.loadMore();
  t.same(ids(store.getSnapshot().items), all.reverse());
  t.notOk(store.getSnapshot().hasMore, 'nothing older');
  const settled = store.getSnapshot();
  await store.loadMore();
  t.equal(store.getSnapshot().items.length, 5, 'loading past the end loads nothing');
  t.same(ids(settled.items), ids(store.getSnapshot().items));
});

t.test('two tabs: read and delete show in the other at once; undo restores; the delete is sent after the window', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const [a, b] = [(await s.publish({ user: 'cat', title: 'a' })).body.id as number, (await s.publish({ user: 'cat', title: 'b' })).body.id as number];
  channels++;
  const tab1 = inbox(t, s, 'cat', { undoMs: 300 });
  const tab2 = inbox(t, s, 'cat', { undoMs: 300 });
  for (const tab of [tab1, tab2]) await waitUntil('loaded', () => tab.store.getSnapshot().items.length === 2 && tab.store.getSnapshot().unreadCount === 2);

  await tab1.store.markRead(a);
  await waitUntil('read in the other tab', () => tab2.store.getSnapshot().items.find((n) => n.id === a)?.read === true);
  t.equal(tab2.store.getSnapshot().unreadCount, 1);
  t.equal((await history(s, 'cat')).find((n) => n.id === a)!.read, true, 'and on the server');

  tab1.store.remove(b);
  t.same(ids(tab1.store.getSnapshot().items), [a], 'gone here at once');
  t.same(tab1.store.getSnapshot().pendingDeletes, [b], 'and undoable');
  await waitUntil('gone in the other tab', () => tab2.store.getSnapshot().items.length === 1);
  t.equal(tab2.store.getSnapshot().unreadCount, 0);
  tab1.store.undoRemove(b);
  await waitUntil('back in the other tab', () => tab2.store.getSnapshot().items.length === 2);
  t.same(ids(tab1.store.getSnapshot().items), [b, a]);
  t.equal(tab1.store.getSnapshot().unreadCount, 1);
  await sleep(500);
  t.equal((await history(s, 'cat')).length, 2, 'an undone delete is never sent');

  tab1.store.remove(b);
  const end = Date.now() + 5000;
  while ((await history(s, 'cat')).length !== 1 && Date.now() < end) await sleep(50);
  t.same((await history(s, 'cat')).map((n) => n.id), [a], 'sent once the window passed');
  await waitUntil('still gone in the other tab', () => tab2.store.getSnapshot().items.length === 1);
  t.same(tab1.store.getSnapshot().pendingDeletes, []);

  await tab2.store.markAllRead();
  await waitUntil('all read in the first tab', () => tab1.store.getSnapshot().items.every((n) => n.read));
  t.equal(tab1.store.getSnapshot().unreadCount, 0);
});

t.test('stop() sends a delete still in its undo window', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const id = (await s.publish({ user: 'dan', title: 'x' })).body.id as number;
  const { store } = inbox(t, s, 'dan', { undoMs: 60_000 });
  await waitUntil('loaded', () => store.getSnapshot().items.length === 1);
  store.remove(id);
  store.stop();
  const end = Date.now() + 5000;
  while ((await history(s, 'dan')).length !== 0 && Date.now() < end) await sleep(50);
  t.same(await history(s, 'dan'), []);
});

t.test('a stream that resumes tells its catch-up in one caughtUp event, not as live ones', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const storage = new MemoryStorage();
  const first = inbox(t, s, 'eli', { storage, resumeKey: 'k' });
  // The catch-up ends with the count (Herald's `unread` event); what comes after is live.
  await waitUntil('caught up', () => first.store.getSnapshot().unreadCount !== null);
  const seenId = (await s.publish({ user: 'eli', title: 'seen' })).body.id as number;
  await waitUntil('seen', () => first.seen.live.length === 1);
  first.store.stop();
  t.equal(storage.getItem('k'), String(seenId));

  const missed = [];
  for (let i = 0; i < 3; i++) missed.push((await s.publish({ user: 'eli', title: `missed ${i}` })).body.id as number);
  const second = inbox(t, s, 'eli', { storage, resumeKey: 'k' });
  await waitUntil('the catch-up', () => second.seen.caughtUp.length === 1);
  t.same(ids(second.seen.caughtUp[0]!), missed, 'the missed ones, in order');
  t.same(second.seen.live, [], 'no live event for them');
  await waitUntil('the count', () => second.store.getSnapshot().unreadCount === 4);
  const after = (await s.publish({ user: 'eli', title: 'after' })).body.id as number;
  await waitUntil('live again', () => second.seen.live.length === 1);
  t.equal(second.seen.live[0]!.id, after);
  t.equal(second.store.getSnapshot().unreadCount, 5);
});

t.test('a failed request is told in the snapshot and as an error event', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const { store } = inbox(t, s, 'fay', { topics: ['not-allowed'] });
  const errors: Error[] = [];
  store.on('error', (e) => errors.push(e));
  await waitUntil('the error', () => store.getSnapshot().error !== null);
  t.match(store.getSnapshot().error, /topic/i, "the server's message");
  t.ok(errors.length >= 1);
});
