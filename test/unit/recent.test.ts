// The recent-events ring (src/stream/recent.ts) against a real SQLite store and the in-process bus:
// whatever was published, deleted and pruned, and however small the ring, a resume answered by the
// ring is exactly what the store's catchUp answers; a batch of resumes costs at most two store reads;
// a Redis bus's gap repair leaves no hole in it.
import { deepStrictEqual } from 'node:assert/strict';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import fc from 'fast-check';
import t from 'tap';
import { startRedis } from '../../support/backends.js';
import { tempDir } from '../../support/util.js';
import { MemoryBus } from '../../src/bus/memory.js';
import { RedisBus } from '../../src/bus/redis.js';
import { Metrics } from '../../src/metrics.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { RecentRing } from '../../src/stream/recent.js';
import { waitUntil } from '../support/wait.js';
import type { Audience, Target } from '../../src/types.js';

const users = ['ann', 'bob', 'cyd'];
const topics = ['red', 'blue'];

const target: fc.Arbitrary<Target> = fc.oneof(
  fc.subarray(users, { minLength: 1 }).map((u) => ({ users: u })),
  fc.constantFrom(...topics).map((topic) => ({ topic })),
  fc.constant({ broadcast: true as const }),
);

const audience: fc.Arbitrary<Audience> = fc.record({ user: fc.constantFrom(...users), topics: fc.subarray(topics) });

type Op =
  | { op: 'publish'; target: Target }
  | { op: 'delete'; user: string; back: number }
  | { op: 'cap'; perUser: number }
  | { op: 'age'; back: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: target.map((target) => ({ op: 'publish' as const, target })) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), user: fc.constantFrom(...users), back: fc.nat(8) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('cap' as const), perUser: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('age' as const), back: fc.nat(12) }) },
);

/** A store, a bus, and a ring in front of them, published to as POST /notifications does (commit, then announce). */
async function setup(capacity: number, seeded: number) {
  const store = await SqliteStore.open(join(tempDir('herald-ring-'), 'h.db'), 'normal');
  const bus = new MemoryBus();
  const metrics = new Metrics(() => 0);
  const publish = async (target: Target) => {
    const r = await store.insert({ title: 't', target });
    if (r.status === 'created') await bus.publish({ kind: 'notification', notification: r.notification });
    return r;
  };
  for (let i = 0; i < seeded; i++) await publish({ broadcast: true });
  const ring = new RecentRing(store, bus, capacity, metrics);
  await ring.seed();
  return { store, bus, ring, metrics, publish };
}

async function apply(s: Awaited<ReturnType<typeof setup>>, o: Op): Promise<void> {
  const head = await s.store.lastId();
  if (o.op === 'publish') await s.publish(o.target);
  else if (o.op === 'delete') await s.store.remove(o.user, head - o.back);
  else if (o.op === 'cap') await s.store.prune({ perUser: o.perUser });
  else {
    const [n] = await s.store.range(head - o.back - 1, head - o.back);
    if (n) await s.store.prune({ olderThan: new Date(n.createdAt) });
  }
}

const counter = async (m: Metrics, name: string, label: string): Promise<number> =>
  (await m.registry.getSingleMetric(name)!.get()).values.find((v) => Object.values(v.labels).includes(label))?.value ?? 0;

t.test('a resume answered by the ring equals the store catch-up, whatever was published, deleted and pruned', async (t) => {
  const resume = fc.record({ audience, back: fc.integer({ min: -1, max: 30 }), limit: fc.integer({ min: 1, max: 8 }) });
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 8 }),
      fc.nat(10),
      fc.array(fc.oneof(op.map((o) => [o]), fc.array(resume, { minLength: 1, maxLength: 6 })), { maxLength: 30 }),
      async (capacity, seeded, steps) => {
        const s = await setup(capacity, seeded);
        try {
          for (const step of steps) {
            if (!('audience' in step[0]!)) {
              await apply(s, step[0] as Op);
              continue;
            }
            // Resumes asked together are answered in one batch; nothing changes while they are.
            const head = await s.store.lastId();
            const asked = (step as { audience: Audience; back: number; limit: number }[]).map((r) => ({
              ...r,
              afterId: Math.max(0, head - r.back),
            }));
            const expected = await Promise.all(asked.map((r) => s.store.catchUp(r.audience, r.afterId, r.limit)));
            const got = await Promise.all(asked.map((r) => s.ring.catchUp(r.audience, r.afterId, r.limit)));
            // Below the pruned horizon a stream reloads, whatever was missed: the ring replays nothing there.
            for (const answers of [expected, got]) {
              answers.forEach((a, i) => a.prunedUpTo > asked[i]!.afterId && (a.missed = []));
            }
            deepStrictEqual(got, expected);
          }
        } finally {
          s.ring.close();
          await s.store.close();
        }
      },
    ),
    { numRuns: 100 },
  );
  t.ok(true);
});

t.test('a batch of resumes costs one store read for the ring and one for the users, not one per client', async (t) => {
  const s = await setup(50, 0);
  t.teardown(async () => {
    s.ring.close();
    await s.store.close();
  });
  for (let i = 0; i < 40; i++) await s.publish(i % 2 ? { broadcast: true } : { users: [users[i % 3]!] });
  // Older than the ring holds: one shared range read for all of them, kept in the ring afterwards.
  const wide = await setup(10, 0);
  t.teardown(async () => {
    wide.ring.close();
    await wide.store.close();
  });
  // 25 notifications in a ring of 10: it holds 12..25 (between one and two times its size).
  for (let i = 0; i < 25; i++) await wide.publish({ broadcast: true });
  const resumes = Array.from({ length: 300 }, (_, i) => ({ user: `u${i}`, topics: [] as string[] }));
  const answers = await Promise.all(resumes.map((a, i) => wide.ring.catchUp(a, 5 + (i % 10), 100)));
  t.same(
    answers.map((a) => a.missed.length),
    resumes.map((_, i) => 20 - (i % 10)),
  );
  t.equal(await counter(wide.metrics, 'herald_replay_store_reads_total', 'range'), 1, 'one range read below the ring, shared');
  t.equal(await counter(wide.metrics, 'herald_replay_store_reads_total', 'states'), 1, 'one read of the 300 users');
  t.equal(await counter(wide.metrics, 'herald_replay_store_reads_total', 'catchup'), 0, 'no per-client catch-up');
  t.equal(await counter(wide.metrics, 'herald_replay_ring_total', 'miss'), 180, 'from 5 to 10: below the ring');
  t.equal(await counter(wide.metrics, 'herald_replay_ring_total', 'hit'), 120);
  await nextTurn();
  // The rows read are kept: the same resumes now hit the ring.
  await Promise.all(resumes.map((a) => wide.ring.catchUp(a, 5, 100)));
  t.equal(await counter(wide.metrics, 'herald_replay_store_reads_total', 'range'), 1, 'no second range read');
  t.equal(await counter(wide.metrics, 'herald_replay_ring_total', 'hit'), 420);

  // Far behind (more than the ring's size below it) or ahead of it: the store answers that one alone.
  await s.ring.catchUp({ user: 'ann', topics: [] }, 41, 10);
  t.equal(await counter(s.metrics, 'herald_replay_ring_total', 'bypass'), 1, 'ahead of the ring');
  t.equal(await counter(s.metrics, 'herald_replay_store_reads_total', 'catchup'), 1);
});

t.test('with a capacity of 0 there is no ring: every resume reads the store', async (t) => {
  const s = await setup(0, 3);
  t.teardown(async () => {
    s.ring.close();
    await s.store.close();
  });
  const got = await s.ring.catchUp({ user: 'ann', topics: [] }, 1, 10);
  t.same(
    got.missed.map((n) => n.id),
    [2, 3],
  );
  t.equal(await counter(s.metrics, 'herald_replay_ring_total', 'bypass'), 1);
});

t.test('a Redis bus repairing a gap from the store leaves no hole in the ring', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const store = await SqliteStore.open(join(tempDir('herald-ring-'), 'h.db'), 'normal');
  // A resync period longer than the test: only the next message reveals the gap.
  const bus = await RedisBus.open(redis.url, store, 3_600_000, 'ring-test');
  const metrics = new Metrics(() => 0);
  const ring = new RecentRing(store, bus, 100, metrics);
  await ring.seed();
  t.teardown(async () => {
    ring.close();
    await bus.close();
    await store.close();
  });
  const insert = async (target: Target) => {
    const r = await store.insert({ title: 't', target });
    if (r.status !== 'created') throw new Error(r.status);
    return r.notification;
  };
  // Committed, but their messages never reached Redis (their publisher lost it just then).
  await insert({ broadcast: true });
  await insert({ users: ['ann'] });
  await insert({ topic: 'red' });
  const fourth = await insert({ broadcast: true });
  await bus.publish({ kind: 'notification', notification: fourth });
  const ann = { user: 'ann', topics: ['red'] };
  await waitUntil('the fourth routed', async () => (await ring.catchUp(ann, 3, 10)).missed.length === 1);
  const hits = await counter(metrics, 'herald_replay_ring_total', 'hit');
  t.same(await ring.catchUp(ann, 0, 10), await store.catchUp(ann, 0, 10), 'the repaired notifications are in the ring, in order');
  t.equal(await counter(metrics, 'herald_replay_ring_total', 'hit'), hits + 1, 'answered from the ring');
});
