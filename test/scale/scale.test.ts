// Scale-out: two Herald instances sharing a real PostgreSQL database and a real Redis, with real SSE
// clients. Every guarantee of one instance must hold across two, through Redis restarts and an
// instance dying.
import { rmSync } from 'node:fs';
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import type { BusMessage } from '../../src/types.js';
import { startBackends } from '../support/backends.js';
import { sleep, tempDir } from '../../support/util.js';
import type { Json } from '../support/http.js';
import { startProxy } from '../support/proxy.js';
import { spawnServer, startServer, type Server } from '../support/server.js';
import { connect, SseClient } from '../support/sse.js';
import { publisherKey, tokenFor } from '../support/tokens.js';

const { redis, postgres } = await startBackends(t);

/** Env of one deployment: a fresh database, the shared Redis, quick client retries. */
async function deployment(): Promise<Record<string, string>> {
  return { HERALD_STORE: await postgres.newDatabase(), HERALD_BUS: redis.url, HERALD_RETRY_MS: '200' };
}

/** Turns the bus's periodic store check off, so a test sees what gap repair or reconnecting does alone. */
const noPeriodicCheck = { HERALD_BUS_RESYNC_MS: '3600000' };

/** Two instances of one deployment, in this process. */
async function pair(t: Pick<Test, 'teardown'>, extraEnv: Record<string, string> = {}): Promise<{ a: Server; b: Server }> {
  const env = { ...(await deployment()), ...extraEnv };
  const a = await startServer({ env });
  t.teardown(() => a.close());
  const b = await startServer({ env });
  t.teardown(() => b.close());
  return { a, b };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Publishes `count` broadcasts, `inFlight` at a time; resolves with their ids. */
async function publishMany(s: Server, count: number, inFlight: number, title: string): Promise<number[]> {
  const ids: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        const i = next++;
        const r = await s.publish({ broadcast: true, title: `${title} ${i}` });
        if (r.status !== 201) throw new Error(`publish answered ${r.status}: ${JSON.stringify(r.body)}`);
        ids.push(r.body.id);
      }
    }),
  );
  return ids;
}

/** Waits until the client has at least `n` notifications, then a little longer to catch extras. */
async function receiveAll(c: SseClient, n: number, ms = 20_000): Promise<number[]> {
  await c.waitFor(() => c.ids().length >= n, ms);
  await sleep(300);
  return c.ids();
}

t.test('a subscriber on A gets what is published on B, with the same targeting', async (t) => {
  const { a, b } = await pair(t);
  const alice = await connect(a, 'alice', '?topic=news', {}, { topics: ['news'] });
  const bob = await connect(b, 'bob');
  t.teardown(() => (alice.close(), bob.close()));

  const toAlice = await b.publish({ user: 'alice', title: 'from B' });
  const toBob = await a.publish({ user: 'bob', title: 'from A' });
  const news = await b.publish({ topic: 'news', title: 'news' });
  const all = await a.publish({ broadcast: true, title: 'everyone' });
  for (const r of [toAlice, toBob, news, all]) t.equal(r.status, 201);

  t.same(await receiveAll(alice, 3), [toAlice.body.id, news.body.id, all.body.id]);
  t.same(await receiveAll(bob, 2), [toBob.body.id, all.body.id]);
  t.match(alice.of('notification')[0]!.data, { title: 'from B', broadcast: false });
  t.notOk('users' in alice.of('notification')[0]!.data, 'the recipient list does not leak through Redis either');
});

t.test('concurrent publishers on both instances: every client sees every id once, in order', async (t) => {
  const { a, b } = await pair(t);
  const clients = [
    ...(await Promise.all(['u1', 'u2', 'u3'].map((u) => connect(a, u)))),
    ...(await Promise.all(['u4', 'u5', 'u6'].map((u) => connect(b, u)))),
  ];
  t.teardown(() => clients.forEach((c) => c.close()));

  const [fromA, fromB] = await Promise.all([publishMany(a, 100, 8, 'A'), publishMany(b, 100, 8, 'B')]);
  t.same([...fromA, ...fromB].sort((x, y) => x - y), range(1, 200), 'ids 1..200 across both instances, dense');
  for (const [i, c] of clients.entries()) {
    t.same(await receiveAll(c, 200), range(1, 200), `client ${i + 1} (on ${i < 3 ? 'A' : 'B'}) got 1..200 in order, once each`);
  }
});

t.test('a lost or late Redis message: the gap is read from the store, duplicates are dropped', async (t) => {
  const { a, b } = await pair(t, noPeriodicCheck);
  const onA = await connect(a, 'alice');
  const onB = await connect(b, 'alice');
  t.teardown(() => (onA.close(), onB.close()));
  const raw = new Redis(redis.url);
  t.teardown(() => raw.disconnect());
  const send = (msg: BusMessage) => raw.publish(a.config.bus.channel, JSON.stringify(msg));

  // Committed, but only the last one's message goes out: as if the first two were lost in transit.
  const stored = [];
  for (let i = 1; i <= 3; i++) {
    const r = await a.store.insert({ title: `direct ${i}`, target: { users: ['alice'] } });
    if (r.status !== 'created') throw new Error(r.status);
    stored.push(r.notification);
  }
  await send({ kind: 'notification', notification: stored[2]! });
  t.same(await receiveAll(onA, 3), [1, 2, 3], 'A delivered 1 and 2 from the store before 3');
  t.same(await receiveAll(onB, 3), [1, 2, 3], 'so did B');

  // The lost messages turn up after all, then the next real publish.
  await send({ kind: 'notification', notification: stored[0]! });
  await send({ kind: 'notification', notification: stored[1]! });
  const next = await b.publish({ user: 'alice', title: 'next' });
  t.equal(next.body.id, 4);
  t.same(await receiveAll(onA, 4), [1, 2, 3, 4], 'late duplicates dropped on A');
  t.same(await receiveAll(onB, 4), [1, 2, 3, 4], 'and on B');
});

t.test('Redis restarted mid-stream: nothing lost, nothing doubled, in order', async (t) => {
  const { a, b } = await pair(t, noPeriodicCheck);
  const onA = await connect(a, 'x');
  const onB = await connect(b, 'y');
  t.teardown(() => (onA.close(), onB.close()));

  const before = await Promise.all([publishMany(a, 10, 3, 'A'), publishMany(b, 10, 3, 'B')]);
  t.same(await receiveAll(onA, 20), range(1, 20));

  await redis.kill();
  // Redis is down: publishes still commit and answer 201; their messages are lost.
  const during = await Promise.all([publishMany(a, 10, 3, 'A'), publishMany(b, 10, 3, 'B')]);
  t.same(during.flat().sort((x, y) => x - y), range(21, 40), 'publishing goes on without Redis');
  await redis.start();
  // Nothing is published now: only the re-read from the store after reconnecting can deliver 21..40.
  t.same(await receiveAll(onA, 40), range(1, 40), 'A re-read what it missed after reconnecting');
  t.same(await receiveAll(onB, 40), range(1, 40), 'so did B');

  const after = await Promise.all([publishMany(a, 10, 3, 'A'), publishMany(b, 10, 3, 'B')]);
  t.same([...before, ...during, ...after].flat().sort((x, y) => x - y), range(1, 60));
  t.same(await receiveAll(onA, 60), range(1, 60), 'live again on A');
  t.same(await receiveAll(onB, 60), range(1, 60), 'live again on B');
  // Read events travel over Redis only (no store re-read): this one proves both connections are back.
  t.equal((await b.request('POST', '/notifications/60/read', 'x')).status, 200);
  await onA.waitFor((e) => e.some((x) => x.type === 'read'), 10_000);
  t.same(onA.of('read')[0]!.data, { ids: [60] }, 'a read on B reaches the tab on A through the restarted Redis');
});

t.test('while Redis is down, open streams still get notifications from the periodic store check', async (t) => {
  const { a, b } = await pair(t, { HERALD_BUS_RESYNC_MS: '200' });
  const onA = await connect(a, 'alice');
  const onB = await connect(b, 'alice');
  t.teardown(() => (onA.close(), onB.close()));
  await redis.kill();
  t.teardown(() => redis.start());
  for (let i = 0; i < 5; i++) t.equal((await (i % 2 ? a : b).publish({ user: 'alice', title: `n${i}` })).status, 201);
  t.same(await receiveAll(onA, 5), range(1, 5), 'on A, with Redis still down');
  t.same(await receiveAll(onB, 5), range(1, 5), 'on B');
});

t.test('read state follows a user across tabs on different instances', async (t) => {
  const { a, b } = await pair(t);
  const tabA = await connect(a, 'alice');
  const tabB = await connect(b, 'alice');
  const bob = await connect(a, 'bob');
  t.teardown(() => [tabA, tabB, bob].forEach((c) => c.close()));
  const n1 = (await a.publish({ user: 'alice', title: 'one' })).body.id;
  const n2 = (await b.publish({ broadcast: true, title: 'two' })).body.id;
  await receiveAll(tabA, 2);
  await receiveAll(tabB, 2);

  t.equal((await b.request('POST', `/notifications/${n1}/read`, 'alice')).status, 200);
  await tabA.waitFor((e) => e.some((x) => x.type === 'read'));
  t.same(tabA.of('read')[0]!.data, { ids: [n1] }, 'read on B reaches the tab on A');
  t.equal((await a.request('DELETE', `/notifications/${n2}`, 'alice')).status, 204);
  await tabB.waitFor((e) => e.some((x) => x.type === 'deleted'));
  t.same(tabB.of('deleted')[0]!.data, { id: n2 }, 'delete on A reaches the tab on B');
  const all = await b.request('POST', '/notifications/read-all', 'alice');
  await tabA.waitFor((e) => e.filter((x) => x.type === 'read').length >= 2);
  t.same(tabA.of('read')[1]!.data, { all: true, upTo: all.body.upTo });

  const history = await a.request('GET', '/notifications', 'alice');
  t.same(history.body.items.map((i: Json) => [i.id, i.read]), [[n1, true]], 'A’s history has B’s changes');
  await sleep(200);
  t.same(bob.of('read').length + bob.of('deleted').length, 0, 'another user hears nothing');
  t.same(bob.ids(), [n2], 'and still has the broadcast alice deleted');
});

t.test('an Idempotency-Key holds across instances, even when the retries race', async (t) => {
  const { a, b } = await pair(t);
  const alice = await connect(b, 'alice');
  t.teardown(() => alice.close());
  const body = { user: 'alice', title: 'Payment received' };
  const headers = { 'idempotency-key': 'payment-42' };
  const answers = await Promise.all([a, b, a, b, a, b].map((s) => s.publish(body, headers)));
  t.same(answers.map((r) => r.status), [201, 201, 201, 201, 201, 201]);
  t.same([...new Set(answers.map((r) => r.body.id))], [1], 'one notification, one id');
  t.equal(await a.store.lastId(), 1, 'nothing else was stored');
  t.equal((await b.publish({ ...body, title: 'Payment refunded' }, headers)).status, 422, 'same key, other body: refused on B');
  t.equal((await a.publish({ ...body, title: 'Payment refunded' }, headers)).status, 422, 'and on A');
  t.same(await receiveAll(alice, 1), [1], 'delivered once');
});

t.test('instance A is killed: its client reconnects to B with Last-Event-ID and misses nothing', async (t) => {
  const env = await deployment();
  // A password in the URL: PostgreSQL ignores it here (trust), and it must not be printed.
  env.HERALD_STORE = env.HERALD_STORE!.replace('postgres@', 'postgres:hunter2-secret@');
  const dirs = [tempDir(), tempDir()];
  t.teardown(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const a = await spawnServer({ ...env, HERALD_DATA_DIR: dirs[0]! });
  t.teardown(() => a.stop('SIGKILL'));
  const b = await spawnServer({ ...env, HERALD_DATA_DIR: dirs[1]! });
  t.teardown(() => b.stop());
  t.notMatch(a.output(), /hunter2/, 'the store password is not printed');
  t.match(a.output(), /store: postgres:\/\/postgres:\*\*\*@/);
  const lb = await startProxy([a, b].map((s) => Number(new URL(s.url).port)));
  t.teardown(() => lb.close());

  const client = new SseClient(`${lb.url}/events`, tokenFor('alice'));
  t.teardown(() => client.close());
  await client.opened;
  await sleep(50);
  t.same(lb.connections, [1, 0], 'the client is on A');

  const published: number[] = [];
  const publish = async (i: number) => {
    const res = await fetch(`${b.url}/notifications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${publisherKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'alice', title: `n${i}` }),
    });
    const body = (await res.json()) as Json;
    if (res.status !== 201) throw new Error(`publish answered ${res.status}: ${JSON.stringify(body)}`);
    published.push(body.id);
  };
  for (let i = 0; i < 10; i++) await publish(i);
  await client.waitFor(() => client.ids().length >= 10, 10_000);
  t.equal(client.events.at(-1)!.id, String(published.at(-1)), 'Last-Event-ID will be the newest id');

  // The client's reconnect is held at the load balancer until these are published: with no stream
  // open anywhere, only catch-up from its Last-Event-ID can bring them.
  lb.hold();
  await a.stop('SIGKILL');
  for (let i = 10; i < 20; i++) await publish(i);
  lb.release();
  await client.waitFor(() => client.ids().length >= 20, 15_000);
  for (let i = 20; i < 25; i++) await publish(i);
  t.same(await receiveAll(client, 25), published, 'every id, in order, once');
  t.same(published, range(1, 25));
  t.equal(lb.connections[0], 1, 'A got no more connections');
  t.ok(lb.connections[1]! >= 1, 'the client reconnected to B');
});

t.test('a misconfigured or unreachable Redis or PostgreSQL stops the start with a message naming it', async (t) => {
  const env = await deployment();
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await t.rejects(
    spawnServer({ HERALD_DATA_DIR: dir, HERALD_BUS: redis.url }),
    /configuration error: HERALD_BUS=redis:\/\/\.\.\. needs HERALD_STORE=postgres:\/\/\.\.\./,
    'instances with a SQLite file each cannot share a bus',
  );
  await t.rejects(spawnServer({ ...env, HERALD_DATA_DIR: dir, HERALD_BUS: 'redis://127.0.0.1:1' }), /cannot use Redis at redis:\/\/127\.0\.0\.1:1.*ECONNREFUSED/);
  await t.rejects(
    spawnServer({ ...env, HERALD_DATA_DIR: dir, HERALD_STORE: 'postgres://u:pw@127.0.0.1:1/db' }),
    /cannot use PostgreSQL at postgres:\/\/u:\*\*\*@127\.0\.0\.1:1\/db.*ECONNREFUSED/,
  );
});

t.test('two deployments on one Redis, each on its own HERALD_BUS_CHANNEL, never see each other', async (t) => {
  // Same Redis, separate databases: only the channel keeps their traffic apart (pub/sub ignores the
  // database number of the URL). The same user name exists in both.
  const servers = [];
  for (const name of ['blue', 'green']) {
    const s = await startServer({ env: { ...(await deployment()), HERALD_BUS_CHANNEL: `herald:${name}`, ...noPeriodicCheck } });
    t.teardown(() => s.close());
    servers.push(s);
  }
  const [blue, green] = servers as [Server, Server];
  const onBlue = await connect(blue, 'alice');
  const onGreen = await connect(green, 'alice');
  t.teardown(() => (onBlue.close(), onGreen.close()));
  const sent = await blue.publish({ user: 'alice', title: 'blue only' });
  t.same(await receiveAll(onBlue, 1), [sent.body.id], 'blue delivers its own notification');
  const own = await green.publish({ user: 'alice', title: 'green only' });
  t.same(await receiveAll(onGreen, 1), [own.body.id], 'green delivers only its own, with its own id');
  t.same(onGreen.events.map((e) => e.data.title), ['green only'], "green's alice never saw blue's");
  t.same(onBlue.events.map((e) => e.data.title), ['blue only'], "nor blue's alice green's");
});
