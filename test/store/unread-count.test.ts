// Each store's unreadCount against the query it replaced (kept here, as the reference): whatever was
// published, read, read-all, deleted and muted, both give the same count for every audience, bound and
// `topicsOnly`; and for a user with no state of their own the count costs far less than that query's
// visit of every unread notification. On SQLite and on PostgreSQL.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import pg from 'pg';
import t from 'tap';
import { startPostgres, type PostgresServer } from '../../support/backends.js';
import { tempDir } from '../../support/util.js';
import { defaultPreferences, inappMutes } from '../../src/domain/preferences.js';
import { PostgresStore } from '../../src/store/postgres.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import type { Audience, Target } from '../../src/types.js';

/**
 * The count before it was rewritten: every visible notification of the three sources above the read
 * mark and up to UP_TO, tested one by one for a read row, a deleted row and a mute. In SQLite's
 * dialect; `postgres` below rewrites it.
 */
const referenceSql = `SELECT count(*) AS c FROM (
  SELECT x.id FROM (SELECT notification_id AS id FROM recipients WHERE user_id = @user) x WHERE NOT @topicsOnly AND COND
  UNION ALL SELECT x.id FROM notifications x WHERE NOT @topicsOnly AND x.broadcast = 1 AND COND
  UNION ALL SELECT x.id FROM notifications x WHERE x.topic IN (SELECT value FROM json_each(@topics)) AND COND) v`.replaceAll(
  'COND',
  `x.id > coalesce((SELECT read_up_to FROM read_marks WHERE user_id = @user), 0) AND x.id <= @upTo
    AND NOT EXISTS (SELECT 1 FROM user_state s WHERE s.user_id = @user AND s.notification_id = x.id AND s.read = 1)
    AND NOT EXISTS (SELECT 1 FROM user_state s WHERE s.user_id = @user AND s.notification_id = x.id AND s.deleted = 1)
    AND NOT EXISTS (SELECT 1 FROM inapp_mutes m JOIN notifications mn ON mn.id = x.id
      WHERE m.user_id = @user AND mn.critical = 0
        AND ((m.kind = 'type' AND m.name = mn.type) OR (m.kind = 'topic' AND m.name = mn.topic)))`,
);

/** The reference in PostgreSQL's dialect: booleans, text[] topics, numbered parameters. */
const referencePg = referenceSql
  .replaceAll('x.topic IN (SELECT value FROM json_each(@topics))', 'x.topic = ANY(@topics::text[])')
  .replaceAll(/ = 1\b/g, '')
  .replaceAll('mn.critical = 0', 'NOT mn.critical')
  .replaceAll('@topicsOnly', '$4::boolean')
  .replaceAll('@user', '$1')
  .replaceAll('@topics', '$2')
  .replaceAll('@upTo', '$3');

interface Query {
  audience: Audience;
  upTo?: number;
  topicsOnly: boolean;
}

interface Setup {
  store: Store;
  reference(q: Query): Promise<number>;
  close(): Promise<void>;
}

/** Started by the first PostgreSQL setup, stopped when the file's tests end. */
let postgres: Promise<PostgresServer> | undefined;

/** A store on a fresh file, and the reference count over the same data. */
async function setupSqlite(): Promise<Setup> {
  const dir = tempDir('herald-unread-');
  const file = join(dir, 'h.db');
  const store = await SqliteStore.open(file, 'normal');
  const db = new Database(file, { readonly: true, fileMustExist: true });
  const stmt = db.prepare(referenceSql);
  const reference = async (q: Query) =>
    (
      stmt.get({
        user: q.audience.user,
        topics: JSON.stringify(q.audience.topics),
        upTo: q.upTo ?? Number.MAX_SAFE_INTEGER,
        topicsOnly: q.topicsOnly ? 1 : 0,
      }) as { c: number }
    ).c;
  const close = async () => {
    db.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { store, reference, close };
}

/** A store on a fresh database, and the reference count over the same data. */
async function setupPostgres(): Promise<Setup> {
  postgres ??= startPostgres().then((server) => {
    t.teardown(() => server.stop());
    return server;
  });
  const url = await (await postgres).newDatabase();
  const store = await PostgresStore.open(url);
  const client = new pg.Client(url);
  await client.connect();
  const reference = async (q: Query) => {
    const { rows } = await client.query<{ c: string }>(referencePg, [q.audience.user, q.audience.topics, q.upTo ?? Number.MAX_SAFE_INTEGER, q.topicsOnly]);
    return Number(rows[0]!.c);
  };
  const close = async () => {
    await client.end();
    await store.close();
  };
  return { store, reference, close };
}

// Nothing is sent to dan directly and dan never reads, deletes or mutes: the common case of a storm.
const users = ['ann', 'bob', 'cyd', 'dan'];
const topics = ['red', 'blue', 'green'];
const types = ['alert', 'digest'];

const target: fc.Arbitrary<Target> = fc.oneof(
  fc.subarray(users.slice(0, 3), { minLength: 1 }).map((u) => ({ users: u })),
  fc.constantFrom(...topics).map((topic) => ({ topic })),
  fc.constant({ broadcast: true as const }),
);

type Op =
  | { op: 'publish'; target: Target; type: string | null; critical: boolean }
  | { op: 'read'; user: string; back: number }
  | { op: 'delete'; user: string; back: number }
  | { op: 'readAll'; user: string }
  | { op: 'mute'; user: string; types: string[]; topics: string[] }
  | { op: 'check'; back: number };

const someone = fc.constantFrom(...users.slice(0, 3));
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant('publish' as const),
      target,
      type: fc.constantFrom(null, ...types),
      critical: fc.nat(4).map((n) => n === 0),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('read' as const), user: someone, back: fc.nat(12) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), user: someone, back: fc.nat(12) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('readAll' as const), user: someone }) },
  // Only ann and bob mute, so cyd and dan always count without the mutes' per-notification test.
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('mute' as const), user: fc.constantFrom('ann', 'bob'), types: fc.subarray(types), topics: fc.subarray(topics) }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('check' as const), back: fc.nat(15) }) },
);

/** Every subset of the topics, and one list with a topic twice. */
const topicLists = [...topics.reduce<string[][]>((subsets, tp) => [...subsets, ...subsets.map((s) => [...s, tp])], [[]]), ['red', 'red', 'blue']];

/** Every user, topic list and `topicsOnly`, unbounded and up to `back` below the head: the store's count and the reference's. */
async function check(s: Setup, back: number): Promise<number> {
  const head = await s.store.lastId();
  let compared = 0;
  for (const user of users) {
    for (const topics of topicLists) {
      for (const topicsOnly of [false, true]) {
        for (const upTo of [undefined, Math.max(0, head - back)]) {
          const q: Query = { audience: { user, topics }, topicsOnly, ...(upTo === undefined ? {} : { upTo }) };
          const [got, expected] = [await s.store.unreadCount(q.audience, { upTo, topicsOnly }), await s.reference(q)];
          if (got !== expected) throw new Error(`${JSON.stringify(q)}: ${got}, expected ${expected}`);
          compared++;
        }
      }
    }
  }
  return compared;
}

async function apply(s: Setup, o: Op): Promise<number> {
  const head = await s.store.lastId();
  if (o.op === 'check') return check(s, o.back);
  if (o.op === 'publish') await s.store.insert({ title: 't', target: o.target, ...(o.type ? { type: o.type } : {}), critical: o.critical });
  else if (o.op === 'read') await s.store.markRead(o.user, head - o.back);
  else if (o.op === 'delete') await s.store.remove(o.user, head - o.back);
  else if (o.op === 'readAll') await s.store.markAllRead(o.user);
  else {
    const off = (names: string[]) => Object.fromEntries(names.map((n) => [n, { inapp: false }]));
    const p = { ...defaultPreferences(), types: off(o.types), topics: off(o.topics) };
    await s.store.setPreferences(o.user, p, inappMutes(p));
  }
  return 0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Per store: property runs (each a fresh database; PostgreSQL's cost a round trip per count, so fewer),
 * the fewest counts those runs must compare, and the most the count may cost against the reference's
 * visit of 20,000 notifications (PostgreSQL plans each statement and answers over a socket, a
 * millisecond or so in both timings).
 */
const stores = [
  { kind: 'sqlite', setup: setupSqlite, runs: 60, minCompared: 10_000, ratio: 0.2 },
  { kind: 'postgres', setup: setupPostgres, runs: 20, minCompared: 3_000, ratio: 0.35 },
] as const;

for (const { kind, setup, runs, minCompared, ratio } of stores) {
  t.test(`${kind}: the count equals the per-notification query for every audience, bound and topicsOnly`, async (t) => {
    let compared = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        const s = await setup();
        try {
          for (const o of [...ops, { op: 'check' as const, back: 3 }]) compared += await apply(s, o);
        } finally {
          await s.close();
        }
      }),
      { numRuns: runs },
    );
    t.ok(compared > minCompared, `${compared} counts compared`);
  });

  t.test(`${kind}: a user with no state of their own: no visit of each unread notification`, async (t) => {
    const s = await setup();
    t.teardown(s.close);
    // 20,000 unread broadcasts plus a few notifications of a topic, read and deleted by someone else.
    for (let i = 0; i < 20; i++) {
      await Promise.all(Array.from({ length: 1000 }, () => s.store.insert({ title: 'b', target: { broadcast: true } })));
    }
    for (let i = 0; i < 20; i++) await s.store.insert({ title: 'r', target: { topic: 'red' } });
    await s.store.markRead('ann', 20_005);
    await s.store.remove('ann', 20_006);
    const q: Query = { audience: { user: 'dan', topics: ['red'] }, topicsOnly: false };
    t.equal(await s.store.unreadCount(q.audience), 20_020);
    t.equal(await s.reference(q), 20_020);
    // Alternately, so both see the same load on a shared machine; each timing is one call.
    const fast: number[] = [];
    const slow: number[] = [];
    for (let i = 0; i < 9; i++) {
      let t0 = performance.now();
      await s.store.unreadCount(q.audience);
      fast.push(performance.now() - t0);
      t0 = performance.now();
      await s.reference(q);
      slow.push(performance.now() - t0);
    }
    t.ok(median(fast) <= ratio * median(slow), `median ${median(fast).toFixed(2)} ms, per-notification query ${median(slow).toFixed(2)} ms`);
  });
}
