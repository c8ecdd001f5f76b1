// The Store contract, run against both stores: SQLite (embedded) and PostgreSQL (scale-out, a real
// throwaway server). Whatever the routes and the bus rely on is asserted here, store by store.
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import pg from 'pg';
import t, { type Test } from 'tap';
import { PostgresStore } from '../../src/store/postgres.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { IdempotencyKey, Store } from '../../src/store/store.js';
import { inappMutes, isMuted } from '../../src/domain/preferences.js';
import type { NewNotification, Preferences, StoredNotification } from '../../src/types.js';
import { startPostgres, type PostgresServer } from '../../support/backends.js';
import { tempDir } from '../../support/util.js';

interface Kind {
  name: string;
  /**
   * A fresh, empty database; `open` connects to it (again), as a new process or another instance would;
   * `exec` runs SQL on it directly (with no store open), as an operator or an older release would.
   */
  fresh(t: Pick<Test, 'teardown'>): Promise<{ open(): Promise<Store>; exec(sql: string): Promise<void> }>;
}

let postgres: PostgresServer | undefined;
t.teardown(() => postgres?.stop());

const kinds: Kind[] = [
  {
    name: 'SqliteStore',
    async fresh(t) {
      const dir = tempDir();
      t.teardown(() => rmSync(dir, { recursive: true, force: true }));
      const file = join(dir, 'herald.db');
      return {
        open: () => SqliteStore.open(file, 'normal'),
        async exec(sql) {
          const db = new Database(file);
          db.exec(sql);
          db.close();
        },
      };
    },
  },
  {
    name: 'PostgresStore',
    async fresh() {
      postgres ??= await startPostgres();
      const url = await postgres.newDatabase();
      return {
        open: () => PostgresStore.open(url),
        async exec(sql) {
          const client = new pg.Client(url);
          await client.connect();
          await client.query(sql).finally(() => client.end());
        },
      };
    },
  },
];

const to = (user: string, title = `for ${user}`): NewNotification => ({ title, target: { users: [user] } });
const sub = (device: string) => ({ endpoint: `https://push.example/${device}`, p256dh: 'k', auth: 'a' });

/** Leases every due push job, as "notification user device", sorted. */
async function claimAll(store: Store): Promise<string[]> {
  const jobs = await store.claimPushJobs(Date.now(), 10_000, 60_000);
  return jobs.map((j) => `${j.notificationId} ${j.user} ${j.subscription.endpoint.split('/').pop()}`).sort();
}
const key = (k: string, requestHash = 'h1', publisher = 'pub'): IdempotencyKey => ({ publisher, key: k, requestHash });

/** Inserts and returns the new id, failing the test if it was not created. */
async function created(store: Store, n: NewNotification): Promise<number> {
  const r = await store.insert(n);
  if (r.status !== 'created') throw new Error(`expected created, got ${r.status}`);
  return r.notification.id;
}

for (const kind of kinds) {
  t.test(kind.name, async (t) => {
    /** An open store on a fresh database, closed in teardown. */
    const setup = async (t: Pick<Test, 'teardown'>) => {
      const db = await kind.fresh(t);
      const store = await db.open();
      t.teardown(() => store.close());
      return { store, db };
    };

    t.test('insert: fields round-trip, ids start at 1 and are dense, range and lastId agree', async (t) => {
      const { store } = await setup(t);
      t.equal(await store.lastId(), 0, 'empty store');
      const r = await store.insert({
        title: 'Export ready',
        body: 'report.csv',
        data: { url: '/files/42', nested: { a: [1, 'two', null], b: true } },
        type: 'export',
        target: { users: ['alice', 'bob', 'alice'] },
      });
      t.equal(r.status, 'created');
      if (r.status !== 'created') return;
      t.match(r.notification, { id: 1, title: 'Export ready', body: 'report.csv', type: 'export', topic: null, broadcast: false });
      t.same(r.notification.users, ['alice', 'bob'], 'recipients deduplicated');
      const topic = await store.insert({ title: 'deploy', target: { topic: 'deploys' } });
      const all = await store.insert({ title: 'all', target: { broadcast: true } });
      t.match(topic, { status: 'created', notification: { id: 2, topic: 'deploys', broadcast: false, users: null, body: null, data: null, type: null } });
      t.match(all, { status: 'created', notification: { id: 3, topic: null, broadcast: true, users: null } });
      t.equal(await store.lastId(), 3);

      const stored = await store.range(0, 3);
      t.same(stored.map((n) => n.id), [1, 2, 3]);
      t.same(stored[0], r.notification, 'what the store returns is what insert answered');
      t.same(stored[0]!.data, { url: '/files/42', nested: { a: [1, 'two', null], b: true } });
      t.equal(new Date(stored[0]!.createdAt).toISOString(), stored[0]!.createdAt, 'createdAt is ISO 8601 UTC');
      t.same((await store.range(1, 2)).map((n) => n.id), [2], 'range is (after, upTo]');
      t.same(await store.range(3, 10), [], 'nothing past the head');
    });

    t.test('a batch of concurrent inserts gets dense ids in order', async (t) => {
      const { store } = await setup(t);
      const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => created(store, to(`u${i % 5}`))));
      t.same(ids, Array.from({ length: 50 }, (_, i) => i + 1), 'each caller gets its own id, in call order');
      t.equal(await store.lastId(), 50);
    });

    t.test('idempotency keys: replay, conflict, per publisher, within one batch', async (t) => {
      const { store } = await setup(t);
      const first = await store.insert(to('alice', 'Order shipped'), key('order-1'));
      t.equal(first.status, 'created');
      const again = await store.insert(to('alice', 'Order shipped'), key('order-1'));
      t.same(again, { ...first, status: 'replayed' }, 'a retry answers the first result');
      t.same(await store.insert(to('alice', 'Order lost'), key('order-1', 'h2')), { status: 'conflict' }, 'same key, other request');
      const other = await store.insert(to('alice', 'Order shipped'), key('order-1', 'h1', 'other-publisher'));
      t.match(other, { status: 'created', notification: { id: 2 } }, 'keys are per publisher');
      t.equal(await store.lastId(), 2, 'replays and conflicts take no id');

      // Sent together, they share one transaction: the key is still used once.
      const burst = await Promise.all([
        store.insert(to('bob'), key('burst')),
        store.insert(to('bob'), key('burst')),
        store.insert(to('bob'), key('burst', 'h2')),
        store.insert(to('bob'), key('burst')),
      ]);
      t.same(burst.map((r) => r.status), ['created', 'replayed', 'conflict', 'replayed']);
      const ids = burst.flatMap((r) => (r.status === 'conflict' ? [] : [r.notification.id]));
      t.same(ids, [3, 3, 3]);
      t.equal(await store.lastId(), 3, 'ids stay dense');
    });

    t.test('since: what each audience may see, in order, after an id, limited', async (t) => {
      const { store } = await setup(t);
      const a = await created(store, to('alice'));
      const b = await created(store, to('bob'));
      const ac = await created(store, { title: 'alice+carol', target: { users: ['alice', 'carol'] } });
      const news = await created(store, { title: 'news', target: { topic: 'news' } });
      const sport = await created(store, { title: 'sport', target: { topic: 'sport' } });
      const all = await created(store, { title: 'everyone', target: { broadcast: true } });
      const ids = async (user: string, topics: string[], after = 0, limit = 100) =>
        (await store.since({ user, topics }, after, limit)).map((n) => n.id);

      t.same(await ids('alice', []), [a, ac, all]);
      t.same(await ids('alice', ['news']), [a, ac, news, all]);
      t.same(await ids('bob', ['news', 'sport']), [b, news, sport, all]);
      t.same(await ids('carol', []), [ac, all]);
      t.same(await ids('dave', ['weather']), [all], 'strangers see broadcasts only');
      t.same(await ids('alice', ['news'], ac), [news, all], 'only ids after the given one');
      t.same(await ids('alice', ['news'], 0, 2), [a, ac], 'oldest first, at most limit');
      const [n] = await store.since({ user: 'bob', topics: [] }, 0, 1);
      t.same(n!.users, ['bob'], 'routing is included for the bus');
    });

    t.test('history: newest first, pages, read state per user, unread filter and count', async (t) => {
      const { store } = await setup(t);
      const ids: number[] = [];
      for (let i = 0; i < 5; i++) ids.push(await created(store, to('alice', `a${i}`)));
      const all = await created(store, { title: 'everyone', target: { broadcast: true } });
      const news = await created(store, { title: 'news', target: { topic: 'news' } });
      await created(store, to('bob'));
      const alice = { user: 'alice', topics: [] as string[] };
      const page = async (q: { before?: number; limit?: number; unreadOnly?: boolean }, audience = alice) =>
        (await store.list(audience, { limit: q.limit ?? 50, unreadOnly: q.unreadOnly ?? false, before: q.before })).map((n) => n.id);

      t.same(await page({}), [all, ...ids.slice().reverse()]);
      t.same(await page({ limit: 2 }), [all, ids[4]]);
      t.same(await page({ limit: 2, before: ids[4] }), [ids[3], ids[2]], 'the next page starts below the cursor');
      t.same(await page({}, { user: 'alice', topics: ['news'] }), [news, all, ...ids.slice().reverse()]);
      const newsOnly = await store.list({ user: 'alice', topics: ['news'] }, { limit: 50, unreadOnly: false, topicsOnly: true });
      t.same(newsOnly.map((n) => n.id), [news], 'topicsOnly: the named topics alone');
      t.equal(await store.unreadCount({ user: 'alice', topics: ['news'] }, { topicsOnly: true }), 1);
      t.equal(await store.unreadCount(alice, { upTo: ids[2] }), 3, 'upTo: only ids up to it count');
      const [item] = await store.list(alice, { limit: 1, unreadOnly: false });
      t.notOk('users' in item!, 'history items carry no recipient list');
      t.equal(item!.read, false);
      t.equal(await store.unreadCount(alice), 6);

      t.equal(await store.markRead('alice', ids[1]!), true);
      t.equal(await store.markRead('alice', ids[1]!), true, 'marking twice is fine');
      t.equal(await store.markRead('alice', all), true);
      t.equal(await store.markRead('bob', ids[0]!), false, 'not one of bob’s');
      t.equal(await store.markRead('alice', 999), false, 'no such notification');
      t.same(await page({ unreadOnly: true }), [ids[4], ids[3], ids[2], ids[0]]);
      t.equal(await store.unreadCount(alice), 4);
      t.equal(await store.unreadCount({ user: 'alice', topics: ['news'] }), 5, 'topic notifications count when named');
      const read = (await store.list(alice, { limit: 50, unreadOnly: false })).filter((n) => n.read).map((n) => n.id);
      t.same(read, [all, ids[1]]);
      t.equal(await store.unreadCount({ user: 'carol', topics: [] }), 1, 'a broadcast alice read is unread for carol');

      const upTo = await store.markAllRead('alice');
      t.equal(upTo, await store.lastId(), 'read-all goes up to the newest id');
      t.equal(await store.unreadCount({ user: 'alice', topics: ['news'] }), 0);
      t.same(await page({ unreadOnly: true }), []);
      const later = await created(store, to('alice', 'later'));
      t.same(await page({ unreadOnly: true }), [later], 'newer ones are unread again');
      t.equal(await store.unreadCount(alice), 1);
      t.equal(await store.unreadCount({ user: 'bob', topics: [] }), 2, 'bob is untouched');
    });

    t.test('remove hides a notification from that user only', async (t) => {
      const { store } = await setup(t);
      const shared = await created(store, { title: 'both', target: { users: ['alice', 'bob'] } });
      const all = await created(store, { title: 'everyone', target: { broadcast: true } });
      t.equal(await store.remove('alice', shared), true);
      t.equal(await store.remove('alice', all), true);
      t.equal(await store.remove('alice', shared), false, 'already removed');
      t.equal(await store.markRead('alice', shared), false, 'a removed one cannot be marked read');
      t.equal(await store.remove('carol', shared), false, 'not one of carol’s');
      t.same(await store.since({ user: 'alice', topics: [] }, 0, 10), []);
      t.same((await store.list({ user: 'alice', topics: [] }, { limit: 10, unreadOnly: false })).length, 0);
      t.equal(await store.unreadCount({ user: 'alice', topics: [] }), 0);
      t.same((await store.since({ user: 'bob', topics: [] }, 0, 10)).map((n) => n.id), [shared, all], 'bob still has both');
      t.same((await store.range(0, 2)).map((n) => n.id), [shared, all], 'the bus still sees them');
    });

    t.test('ids keep increasing after a restart', async (t) => {
      const { store, db } = await setup(t);
      for (let i = 0; i < 3; i++) await created(store, to('alice'));
      await store.close();
      const reopened = await db.open();
      t.teardown(() => reopened.close());
      t.equal(await reopened.lastId(), 3, 'the head survives');
      t.equal(await created(reopened, to('alice')), 4);
      t.equal((await reopened.since({ user: 'alice', topics: [] }, 0, 10)).length, 4);
    });

    t.test('close commits the publishes still queued and answers them', async (t) => {
      const { store, db } = await setup(t);
      const pending = Array.from({ length: 5 }, (_, i) => store.insert(to('alice', `queued ${i}`)));
      await store.close();
      const answers = await Promise.all(pending);
      t.same(answers.map((r) => r.status), Array(5).fill('created'), 'every queued publish was answered created');
      const reopened = await db.open();
      t.teardown(() => reopened.close());
      t.same((await reopened.range(0, 10)).map((n) => n.title), ['queued 0', 'queued 1', 'queued 2', 'queued 3', 'queued 4'], 'and is in the database');
    });

    t.test('two instances on one database: ids are dense and become visible in order, keys hold', async (t) => {
      const { store: a, db } = await setup(t);
      const b = await db.open();
      t.teardown(() => b.close());
      // A reader polls the head as fast as it can while both instances publish: every read must extend
      // what it saw before with exactly the next ids. A plain sequence fails this: a later id can
      // commit (and be seen) before an earlier one.
      let seen = 0;
      let reads = 0;
      let writing = true;
      const reader = (async () => {
        while (writing || seen < (await a.lastId())) {
          const rows = await b.range(seen, Number.MAX_SAFE_INTEGER);
          reads++;
          rows.forEach((n, i) => {
            if (n.id !== seen + i + 1) throw new Error(`saw id ${n.id} right after ${seen + i}`);
          });
          seen += rows.length;
          // SQLite answers synchronously: without a turn of the event loop the writers would never run.
          await new Promise((r) => setImmediate(r));
        }
      })();
      const publisher = async (store: Store, name: string) => {
        const ids: number[] = [];
        for (let round = 0; round < 20; round++) {
          const burst = await Promise.all(Array.from({ length: 5 }, (_, i) => created(store, to(`${name}${i}`))));
          ids.push(...burst);
        }
        return ids;
      };
      const [ia, ib] = await Promise.all([publisher(a, 'a'), publisher(b, 'b')]);
      writing = false;
      await reader;
      t.ok(reads > 1, `the reader read ${reads} times while both wrote`);
      t.same([...ia, ...ib].sort((x, y) => x - y), Array.from({ length: 200 }, (_, i) => i + 1), 'ids 1..200, none lost or doubled');
      t.equal(seen, 200);

      // The same key sent to both instances at once is used once.
      const race = await Promise.all([a, b, a, b].map((s) => s.insert(to('alice', 'pay'), key('payment-7'))));
      t.same(race.map((r) => r.status).sort(), ['created', 'replayed', 'replayed', 'replayed']);
      t.same(new Set(race.map((r) => (r.status === 'conflict' ? 0 : r.notification.id))), new Set([201]));
      t.equal(await b.lastId(), 201);
    });

    t.test('push jobs: an insert writes none; queuePushJobs writes one per direct recipient and subscription, once', async (t) => {
      const { store, db } = await setup(t);
      for (const [user, device] of [['alice', 'a1'], ['alice', 'a2'], ['bob', 'b1']] as const) await store.addPushSubscription(user, sub(device), 10);
      const both = await created(store, { title: 'both', target: { users: ['alice', 'bob', 'carol'] } });
      await created(store, to('carol'));
      await created(store, { title: 'deploy', target: { topic: 'deploys' } });
      await created(store, { title: 'all', target: { broadcast: true } });
      const bobs = await created(store, to('bob'));
      t.same(await claimAll(store), [], 'the inserts wrote no job');
      t.equal(await store.queuePushJobs(Date.now(), 1000), 5, 'the cursor moved past the five');
      t.same(await claimAll(store), [`${both} alice a1`, `${both} alice a2`, `${both} bob b1`, `${bobs} bob b1`], 'one job per subscription of each recipient; none for carol, the topic or the broadcast');
      t.equal(await store.queuePushJobs(Date.now(), 1000), 0, 'again: nothing more');

      const more = [await created(store, to('alice')), await created(store, to('alice')), await created(store, to('alice'))];
      t.equal(await store.queuePushJobs(Date.now(), 2), 2, 'at most `max` ids a call');
      t.same(await claimAll(store), more.slice(0, 2).flatMap((id) => [`${id} alice a1`, `${id} alice a2`]));
      await store.close();
      const reopened = await db.open();
      t.teardown(() => reopened.close());
      t.equal(await reopened.queuePushJobs(Date.now(), 1000), 1, 'after a restart: where the cursor stopped');
      t.same(await claimAll(reopened), [`${more[2]} alice a1`, `${more[2]} alice a2`]);
      t.equal(await reopened.queuePushJobs(Date.now(), 1000), 0);

      // At most `max` recipients a call too, but a notification whole, however many it has.
      const three = await created(reopened, { title: 'three', target: { users: ['alice', 'bob', 'carol'] } });
      const one = await created(reopened, to('bob'));
      const two = await created(reopened, { title: 'two', target: { users: ['alice', 'bob'] } });
      t.equal(await reopened.queuePushJobs(Date.now(), 2), 1, 'three recipients: alone');
      t.equal(await reopened.queuePushJobs(Date.now(), 2), 1, 'one, not with the two after it');
      t.equal(await reopened.queuePushJobs(Date.now(), 2), 1, 'two');
      t.same(await claimAll(reopened), [`${three} alice a1`, `${three} alice a2`, `${three} bob b1`, `${one} bob b1`, `${two} alice a1`, `${two} alice a2`, `${two} bob b1`].sort());
    });

    t.test('push cursor: a database from before it starts at its newest id (no history pushed)', async (t) => {
      const db = await kind.fresh(t);
      const older = await db.open();
      await older.addPushSubscription('alice', sub('a1'), 10);
      for (let i = 0; i < 3; i++) await created(older, to('alice'));
      await older.close();
      await db.exec('DROP TABLE push_cursor');
      const store = await db.open();
      t.teardown(() => store.close());
      t.equal(await store.queuePushJobs(Date.now(), 1000), 0, 'the three before the upgrade are not pushed');
      t.same(await claimAll(store), []);
      const next = await created(store, to('alice'));
      t.equal(await store.queuePushJobs(Date.now(), 1000), 1);
      t.same(await claimAll(store), [`${next} alice a1`], 'the next one is');
    });

    t.test('push jobs and retention: a notification pruned before queueing gets none; its queued jobs go with it', async (t) => {
      const { store } = await setup(t);
      await store.addPushSubscription('alice', sub('a1'), 10);
      await created(store, to('alice'));
      await created(store, to('alice'));
      const later = new Date(Date.now() + 60_000);
      t.equal(await store.prune({ olderThan: later }), 2);
      t.equal(await store.queuePushJobs(Date.now(), 1000), 2, 'the cursor moves past them');
      t.same(await claimAll(store), [], 'with no job');
      await created(store, to('alice'));
      t.equal(await store.queuePushJobs(Date.now(), 1000), 1);
      t.equal(await store.prune({ olderThan: later }), 1);
      t.same(await claimAll(store), [], 'the queued job went with its notification');
    });

    const oneWriter = kind.name === 'SqliteStore' && 'a SQLite file has one writer: one process';
    t.test('two instances queueing push jobs at once write each job once', { skip: oneWriter }, async (t) => {
      const { store: a, db } = await setup(t);
      const b = await db.open();
      t.teardown(() => b.close());
      const users = Array.from({ length: 10 }, (_, i) => `u${i}`);
      for (const u of users) for (const d of [1, 2]) await a.addPushSubscription(u, sub(`${u}-${d}`), 10);
      for (let i = 0; i < 30; i++) {
        await Promise.all(Array.from({ length: 10 }, (_, j) => a.insert({ title: 'n', target: { users: [users[j]!, users[(j + 1 + (i % 9)) % 10]!] } })));
      }
      // Small steps, four loops on two instances: each call races the others for the cursor.
      const run = async (store: Store) => {
        let moved = 0;
        for (let n; (n = await store.queuePushJobs(Date.now(), 7)) > 0; ) moved += n;
        return moved;
      };
      const moved = await Promise.all([run(a), run(b), run(a), run(b)]);
      t.equal(moved.reduce((x, y) => x + y, 0), 300, 'the cursor moved past each of the 300 ids once in all');
      t.ok(moved.filter((m) => m > 0).length > 1, `more than one loop moved it (${moved.join(', ')})`);
      const jobs = await claimAll(b);
      t.equal(jobs.length, 300 * 2 * 2, 'two recipients with two subscriptions each, per notification');
      t.equal(new Set(jobs).size, jobs.length, 'none twice');
    });

    t.test('catchUp: the head, one page and the pruned horizon, as lastId, since and prunedUpTo see them', async (t) => {
      const { store } = await setup(t);
      const alice = { user: 'alice', topics: [] };
      t.same(await store.catchUp(alice, 0, 10), { head: 0, missed: [], prunedUpTo: 0 }, 'an empty store');
      const a = await created(store, to('alice'));
      const b = await created(store, to('bob'));
      const c = await created(store, to('alice'));
      const page = await store.catchUp(alice, 0, 10);
      t.equal(page.head, c);
      t.same(page.missed, await store.since(alice, 0, 10), 'the same rows as since');
      t.same(page.missed.map((n) => n.id), [a, c], "only alice's");
      t.equal(page.prunedUpTo, 0);
      t.same((await store.catchUp(alice, 0, 1)).missed.map((n) => n.id), [a], 'at most the limit');
      t.same(await store.catchUp(alice, c, 10), { head: c, missed: [], prunedUpTo: 0 }, 'nothing after the head');
      await store.prune({ perUser: 1 });
      const pruned = await store.catchUp(alice, 0, 10);
      t.equal(pruned.prunedUpTo, a, 'the horizon the prune raised');
      t.same(pruned.missed.map((n) => n.id), [c]);
      t.equal((await store.catchUp({ user: 'bob', topics: [] }, 0, 10)).missed[0]?.id, b, "bob's untouched");
    });

    t.test('replayStates: each user asked for, their deletions above an id, their pruned horizon and their in-app mutes', async (t) => {
      const { store } = await setup(t);
      t.same([...(await store.replayStates(['alice', 'bob'], 0))], [
        ['alice', { prunedUpTo: 0, deleted: [], mutes: { types: [], topics: [] } }],
        ['bob', { prunedUpTo: 0, deleted: [], mutes: { types: [], topics: [] } }],
      ]);
      const a = await created(store, to('alice'));
      const b = await created(store, { title: 'all', target: { broadcast: true } });
      const c = await created(store, to('alice'));
      await created(store, to('alice'));
      await store.remove('alice', c);
      await store.remove('alice', b);
      await store.remove('alice', a);
      await store.remove('bob', b);
      await store.prune({ perUser: 2 });
      const prefs = { push: 'offline' as const, quietHours: null, types: { chat: { inapp: false } }, topics: { ops: { inapp: false } } };
      await store.setPreferences('bob', prefs, { types: ['chat'], topics: ['ops'] });
      const states = await store.replayStates(['alice', 'bob', 'carol'], a);
      t.same(states.get('alice'), { prunedUpTo: a, deleted: [b, c], mutes: { types: [], topics: [] } }, 'ascending, above the id asked; the pruned one is gone with its state');
      t.same(states.get('bob'), { prunedUpTo: 0, deleted: [b], mutes: { types: ['chat'], topics: ['ops'] } }, 'with the in-app mutes');
      t.same(states.get('carol'), { prunedUpTo: 0, deleted: [], mutes: { types: [], topics: [] } }, 'a user with no state');
    });

    t.test('prune: by age for everyone, by per-user cap for direct ones, with horizons', async (t) => {
      const { store } = await setup(t);
      const alice = await Promise.all(Array.from({ length: 5 }, () => created(store, to('alice'))));
      const shared = await created(store, { title: 'both', target: { users: ['alice', 'bob'] } });
      const more = await Promise.all(Array.from({ length: 3 }, () => created(store, to('alice'))));
      await store.insert(to('alice', 'keyed'), key('k-old'));
      t.equal(await store.prunedUpTo('alice'), 0, 'nothing pruned yet');

      // Cap 3: alice keeps her 3 newest direct notifications; bob still has the shared one.
      const removed = await store.prune({ perUser: 3 });
      t.equal(removed, 6, 'five of alice\'s own and nothing shared with bob');
      const aliceNow = (await store.since({ user: 'alice', topics: [] }, 0, 100)).map((n) => n.id);
      t.same(aliceNow, [more[1], more[2], 10]);
      t.same((await store.since({ user: 'bob', topics: [] }, 0, 100)).map((n) => n.id), [shared], 'bob keeps the shared one');
      t.equal(await store.prunedUpTo('alice'), more[0], "alice's horizon is the newest id she lost");
      t.equal(await store.prunedUpTo('bob'), 0, 'bob lost nothing');
      t.ok(alice.length === 5);

      // Age: a cutoff in the future makes everything old.
      const all = await created(store, { title: 'all', target: { broadcast: true } });
      const gone = await store.prune({ olderThan: new Date(Date.now() + 60_000) });
      t.equal(gone, 5, 'every remaining notification');
      t.equal(await store.prunedUpTo('bob'), all, 'the age horizon applies to everyone');
      t.equal(await store.lastId(), all, 'lastId still counts pruned ids');
      t.equal(await created(store, to('carol')), all + 1, 'ids are never reused after pruning');
      t.match(await store.insert(to('alice', 'again'), key('k-old')), { status: 'created' }, 'a pruned notification frees its idempotency key');

      const aborted = new AbortController();
      aborted.abort();
      t.equal(await store.prune({ olderThan: new Date(Date.now() + 60_000), signal: aborted.signal }), 0, 'an aborted prune does nothing');
    });

    t.test('preferences: stored per user; every audience query leaves out what isMuted says, and only that', async (t) => {
      const { store, db } = await setup(t);
      t.equal(await store.preferences('alice'), null, 'none stored');
      const prefs: Preferences = {
        push: 'never',
        quietHours: { start: '23:30', end: '06:00', timeZone: 'America/New_York' },
        types: { chat: { inapp: false }, billing: { push: false, inapp: true } },
        topics: { deploys: { inapp: false } },
      };
      await store.setPreferences('alice', prefs, inappMutes(prefs));
      // Set twice, as a second PUT would: the mutes are replaced, not added to.
      await store.setPreferences('alice', prefs, inappMutes(prefs));
      t.same(await store.preferences('alice'), prefs);
      t.same(await (await db.open()).preferences('alice'), prefs, 'as another instance reads it');
      const all: StoredNotification[] = [];
      for (const type of [undefined, 'chat', 'billing'])
        for (const target of [{ users: ['alice'] }, { topic: 'deploys' }, { topic: 'news' }, { broadcast: true as const }])
          for (const critical of [false, true]) {
            const r = await store.insert({ title: 't', type, critical, target });
            if (r.status !== 'created') throw new Error(r.status);
            all.push(r.notification);
          }
      const sets = { types: new Set(inappMutes(prefs).types), topics: new Set(inappMutes(prefs).topics) };
      const expected = all.filter((n) => !isMuted(sets, n)).map((n) => n.id);
      const audience = { user: 'alice', topics: ['deploys', 'news'] };
      t.ok(expected.length < all.length && expected.length > all.length / 3, 'some muted, some not');
      t.same((await store.since(audience, 0, 100)).map((n) => n.id), expected, 'since');
      t.same((await store.catchUp(audience, 0, 100)).missed.map((n) => n.id), expected, 'catchUp');
      t.same((await store.list(audience, { limit: 100, unreadOnly: false })).map((n) => n.id), [...expected].reverse(), 'list');
      t.same((await store.list(audience, { limit: 100, unreadOnly: true })).map((n) => n.id), [...expected].reverse(), 'list unread');
      t.equal(await store.unreadCount(audience), expected.length, 'unreadCount');
      const withMuted = await store.list(audience, { limit: 100, unreadOnly: false, includeMuted: true });
      t.same(withMuted.map((n) => [n.id, n.muted]), [...all].reverse().map((n) => [n.id, !expected.includes(n.id)]), 'list includeMuted, flagged');
      t.same(withMuted.find((n) => n.critical)?.critical, true, 'critical round-trips');
      t.equal(await store.unreadCount({ user: 'bob', topics: ['deploys', 'news'] }), 18, "bob's view is his own: nothing muted");
    });
  });
}
