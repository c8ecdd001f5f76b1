// The mechanics both stores share, on small real inputs: group commit (src/store/group-commit.ts),
// the row of a new notification (src/store/rows.ts) and the retention loop (src/store/prune.ts).
// The SQL each store runs under them is asserted by the contract test, test/store/store.test.ts.
import { setImmediate as nextTurn } from 'node:timers/promises';
import t from 'tap';
import { GroupCommit } from '../../src/store/group-commit.js';
import { prune, pruneBatch, type PruneSteps } from '../../src/store/prune.js';
import { created, newRow } from '../../src/store/rows.js';
import { deferred } from '../support/wait.js';

/** A group commit whose transactions record their batches and answer each item doubled. */
function recorder(maxBatch?: number) {
  const batches: number[][] = [];
  let open = 0;
  let overlapped = false;
  let gate: Promise<void> = Promise.resolve();
  const gc = new GroupCommit<number, number>(async (batch) => {
    overlapped ||= open > 0;
    open++;
    batches.push(batch);
    await gate;
    open--;
    return batch.map((x) => x * 2);
  }, maxBatch);
  return { gc, batches, overlapped: () => overlapped, hold: (p: Promise<void>) => (gate = p) };
}

t.test('group commit: items added in one turn share one transaction and are answered in order', async (t) => {
  const { gc, batches } = recorder();
  const answers = await Promise.all([1, 2, 3, 4, 5].map((x) => gc.add(x)));
  t.same(batches, [[1, 2, 3, 4, 5]], 'one transaction');
  t.same(answers, [2, 4, 6, 8, 10], 'each caller gets its own answer');
  t.same(await gc.add(6), 12, 'a later turn starts a new transaction');
  t.same(batches, [[1, 2, 3, 4, 5], [6]]);
});

t.test('group commit: callers are answered only once their transaction has committed', async (t) => {
  const { gc, hold } = recorder();
  const commit = deferred();
  hold(commit.promise);
  let answered = false;
  const pending = gc.add(1).then(() => (answered = true));
  for (let i = 0; i < 5; i++) await nextTurn();
  t.notOk(answered, 'not while the transaction is open');
  commit.resolve();
  await pending;
  t.ok(answered);
});

t.test('group commit: what arrives during a transaction shares the next one; one transaction at a time', async (t) => {
  const { gc, batches, hold, overlapped } = recorder();
  const first = deferred();
  hold(first.promise);
  const a = gc.add(1);
  await nextTurn();
  t.same(batches, [[1]], 'the first transaction is open');
  hold(Promise.resolve());
  const later = [gc.add(2), gc.add(3)];
  await nextTurn();
  const last = gc.add(4);
  t.same(batches, [[1]], 'nothing else starts while it is open');
  first.resolve();
  t.same(await Promise.all([a, ...later, last]), [2, 4, 6, 8]);
  t.same(batches, [[1], [2, 3, 4]], 'everything that waited went in one transaction');
  t.notOk(overlapped(), 'transactions never overlapped');
});

t.test('group commit: maxBatch bounds a transaction; the rest follow in order', async (t) => {
  const { gc, batches } = recorder(2);
  const answers = await Promise.all([1, 2, 3, 4, 5].map((x) => gc.add(x)));
  t.same(batches, [[1, 2], [3, 4], [5]]);
  t.same(answers, [2, 4, 6, 8, 10]);
});

t.test('group commit: a failed transaction fails every caller in it, and only them', async (t) => {
  const boom = new Error('disk full');
  let calls = 0;
  const gc = new GroupCommit<string, string>(async (batch) => {
    calls++;
    if (batch.includes('bad')) throw boom;
    return batch.map((s) => s.toUpperCase());
  }, 3);
  const results = await Promise.allSettled(['a', 'bad', 'c', 'd'].map((s) => gc.add(s)));
  t.same(
    results.map((r) => (r.status === 'fulfilled' ? r.value : r.reason)),
    [boom, boom, boom, 'D'],
    'the three of the failed transaction get its error; the next transaction still commits',
  );
  t.equal(calls, 2);
  t.equal(await gc.add('e'), 'E', 'and the queue keeps working after it');
});

t.test('group commit: a commit that throws synchronously fails its callers too', async (t) => {
  const gc = new GroupCommit<number, number>((() => {
    throw new Error('closed');
  }) as () => Promise<number[]>);
  const results = await Promise.allSettled([gc.add(1), gc.add(2)]);
  t.same(results.map((r) => r.status), ['rejected', 'rejected']);
});

t.test('group commit: drain waits for everything queued, including what joins meanwhile', async (t) => {
  const { gc, batches, hold } = recorder();
  const commit = deferred();
  hold(commit.promise);
  const answers: number[] = [];
  void gc.add(1).then((x) => answers.push(x));
  await nextTurn();
  void gc.add(2).then((x) => answers.push(x));
  let drained = false;
  const draining = gc.drain().then(() => (drained = true));
  await nextTurn();
  t.notOk(drained, 'not while a transaction is open');
  commit.resolve();
  await draining;
  t.same(batches, [[1], [2]]);
  await nextTurn();
  t.same(answers, [2, 4], 'both committed and answered');
  await gc.drain();
  t.pass('draining an idle queue returns at once');
});

t.test('newRow: the values both stores write; created: what the publisher is answered', async (t) => {
  const before = Date.now();
  const row = newRow({ title: 'Export ready', body: 'report.csv', data: { url: '/f/1', n: [1, null] }, type: 'export', target: { users: ['bob', 'alice', 'bob'] } });
  const w = row.write;
  t.match(w, { title: 'Export ready', body: 'report.csv', type: 'export', topic: null, broadcast: false, dataJson: '{"url":"/f/1","n":[1,null]}' });
  t.notOk('data' in w || 'actor' in w || 'actions' in w, 'what is written carries the JSON text only, not the objects too');
  t.same(w.users, ['bob', 'alice'], 'each recipient once, in the order first named');
  t.ok(Date.parse(w.createdAt) >= before - 1 && w.createdAt === new Date(w.createdAt).toISOString(), 'createdAt is now, ISO 8601 UTC');

  const topic = newRow({ title: 't', target: { topic: 'news' } });
  t.match(topic, { data: null, write: { body: null, dataJson: null, type: null, topic: 'news', broadcast: false, users: null } });
  t.match(newRow({ title: 'b', target: { broadcast: true } }).write, { topic: null, broadcast: true, users: null });

  const n = created(row, 7);
  t.same(
    Object.keys(n),
    ['id', 'title', 'body', 'data', 'type', 'topic', 'broadcast', 'critical', 'createdAt', 'url', 'icon', 'actor', 'actions', 'users'],
    'the fields of a stored notification, in the order clients see them, without the JSON text',
  );
  t.same(n, { id: 7, title: 'Export ready', body: 'report.csv', data: { url: '/f/1', n: [1, null] }, type: 'export', topic: null, broadcast: false, critical: false, createdAt: w.createdAt, url: null, icon: null, actor: null, actions: null, users: ['bob', 'alice'] });
  t.equal(newRow({ title: 'c', critical: true, target: { broadcast: true } }).write.critical, true, 'critical as published');
});

/** A store held in memory, as a list of notifications each with its time and direct recipients; its steps record their calls. */
function memory(rows: { id: number; at: number; users: string[] }[]) {
  const calls: string[] = [];
  const horizon = new Map<string, number>();
  const raise = (who: string, ids: number[]) => horizon.set(who, Math.max(horizon.get(who) ?? 0, ...ids));
  const userIds = (user: string) => rows.filter((r) => r.users.includes(user)).map((r) => r.id);
  const steps: PruneSteps = {
    async oldBatch(cutoff) {
      calls.push('old');
      const doomed = rows.filter((r) => r.at < cutoff.getTime()).slice(0, pruneBatch);
      rows = rows.filter((r) => !doomed.includes(r));
      if (doomed.length > 0) raise('', doomed.map((r) => r.id));
      return doomed.length;
    },
    async deadWebhooksBatch() {
      calls.push('dead webhooks');
      return 0;
    },
    async usersOverCap(perUser) {
      const users = [...new Set(rows.flatMap((r) => r.users))];
      return users.filter((u) => userIds(u).length > perUser);
    },
    async capEdge(user, perUser) {
      return userIds(user).reverse()[perUser];
    },
    async userBatch(user, upTo) {
      calls.push(`user ${user}`);
      const unlinked = userIds(user).filter((id) => id <= upTo).slice(0, pruneBatch);
      for (const r of rows) if (unlinked.includes(r.id)) r.users = r.users.filter((u) => u !== user);
      const before = rows.length;
      rows = rows.filter((r) => !unlinked.includes(r.id) || r.users.length > 0);
      if (unlinked.length > 0) raise(user, unlinked);
      return { unlinked: unlinked.length, deleted: before - rows.length };
    },
  };
  return { steps, calls, horizon, ids: () => rows.map((r) => r.id) };
}

const many = (from: number, count: number, at: number, users: string[]) =>
  Array.from({ length: count }, (_, i) => ({ id: from + i, at, users: [...users] }));

t.test('prune: by age in batches until a short one, then each user over the cap', async (t) => {
  const m = memory([...many(1, 2500, 0, ['ann']), ...many(2501, 5, 100, ['bob', 'cy']), ...many(2506, 30, 100, ['bob'])]);
  const deleted = await prune(m.steps, { olderThan: new Date(50), perUser: 10 });
  t.equal(deleted, 2500 + 20, "the 2,500 old ones, and bob's oldest but for the 5 cy still has");
  t.same(
    m.calls,
    ['old', 'old', 'old', 'dead webhooks', 'user bob', 'user bob'],
    'three age batches (1,000, 1,000, 500), dead webhooks by the same age; one cap batch, then one that finds nothing',
  );
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
  t.same(m.ids(), [...range(2501, 2505), ...range(2526, 2535)], 'bob keeps his 10 newest; the shared ones he lost stay for cy');
  t.same(Object.fromEntries(m.horizon), { '': 2500, bob: 2525 }, 'each batch raised its horizon');
});

t.test('prune: a cap run goes over many batches for one user', async (t) => {
  const m = memory(many(1, 2100, 100, ['ann']));
  t.equal(await prune(m.steps, { perUser: 50 }), 2050);
  t.same(m.calls, ['user ann', 'user ann', 'user ann', 'user ann'], '1,000 + 1,000 + 50, then nothing left');
  t.equal(m.ids().length, 50);
});

t.test('prune: nothing asked, nothing done; an aborted run stops before its next batch', async (t) => {
  const idle = memory(many(1, 10, 0, ['ann']));
  t.equal(await prune(idle.steps, {}), 0);
  t.same(idle.calls, []);

  const stop = new AbortController();
  const m = memory(many(1, 2500, 0, ['ann']));
  const oldBatch = m.steps.oldBatch.bind(m.steps);
  m.steps.oldBatch = async (cutoff) => {
    const n = await oldBatch(cutoff);
    stop.abort();
    return n;
  };
  t.equal(await prune(m.steps, { olderThan: new Date(50), perUser: 1, signal: stop.signal }), 1000, 'one batch, then it stopped');
  t.same(m.calls, ['old'], 'no dead-webhook nor cap batch either');
});

t.test('prune: other work runs between batches', async (t) => {
  const m = memory(many(1, 2500, 0, ['ann']));
  let turns = 0;
  const seen: number[] = [];
  const oldBatch = m.steps.oldBatch.bind(m.steps);
  m.steps.oldBatch = async (cutoff) => {
    seen.push(turns);
    return oldBatch(cutoff);
  };
  // Stands for publishes and requests: work queued for the next turn of the event loop, again and again.
  let ticking = true;
  const tick = () => {
    turns++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  await prune(m.steps, { olderThan: new Date(50) });
  ticking = false;
  t.equal(seen.length, 3);
  t.ok(seen[0]! < seen[1]! && seen[1]! < seen[2]!, `the event loop turned between batches (${seen.join(', ')})`);
});
