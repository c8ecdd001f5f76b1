// Signed webhooks from the durable outbox and per-recipient receipts, against real servers: a real
// Herald, a loopback receiver that verifies every signature with `standardwebhooks`, real SQLite
// files and a real PostgreSQL (+ Redis for two instances).
import { rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import pg from 'pg';
import t, { type Test } from 'tap';
import { ConfigError, loadConfig } from '../../src/config.js';
import { startPostgres, startRedis, type PostgresServer, type RedisServer } from '../../support/backends.js';
import { sleep, tempDir } from '../../support/util.js';
import type { Json } from '../support/http.js';
import { spawnServer, startServer, type Server } from '../support/server.js';
import { connect } from '../support/sse.js';
import { publisherKey, tokenFor } from '../support/tokens.js';
import { startReceiver, webhookSecret, type Receiver } from '../support/webhook-receiver.js';

/** Quick polls and retries, so a test sees several attempts in well under a second. */
const quick = {
  HERALD_WEBHOOK_SECRET: webhookSecret,
  HERALD_WEBHOOK_ALLOW_HTTP: 'true',
  HERALD_WEBHOOK_POLL_MS: '50',
  HERALD_WEBHOOK_RETRY_BASE_MS: '50',
  HERALD_WEBHOOK_TIMEOUT_MS: '1000',
  HERALD_RECEIPT_FLUSH_MS: '20',
};

async function receiverFor(t: Test): Promise<Receiver> {
  const r = await startReceiver();
  t.teardown(() => r.close());
  return r;
}

async function serverFor(t: Test, receiver: Receiver, env: Record<string, string> = {}): Promise<Server> {
  const s = await startServer({ env: { ...quick, HERALD_WEBHOOKS: receiver.url, ...env } });
  t.teardown(() => s.close());
  return s;
}

const publisher = { authorization: `Bearer ${publisherKey}` };
const adminGet = async (s: Server, path: string): Promise<{ status: number; body: Json }> => {
  const res = await fetch(s.url + path, { headers: publisher });
  return { status: res.status, body: await res.json() };
};

/** The user actions and delivery of one notification, reported and recorded: the same on either store. */
async function receiptsAndEvents(t: Test, store: Record<string, string>): Promise<void> {
  const receiver = await receiverFor(t);
  const s = await serverFor(t, receiver, store);
  const stream = await connect(s, 'alice');
  t.teardown(() => stream.close());

  const direct = (await s.publish({ user: 'alice', title: 'direct' })).body.id as number;
  const other = (await s.publish({ users: ['alice', 'bob'], title: 'to two' })).body.id as number;
  const broadcast = (await s.publish({ broadcast: true, title: 'everyone' })).body.id as number;
  await stream.waitFor((evs) => evs.filter((e) => e.type === 'notification').length === 3);
  await receiver.waitFor(() => receiver.of('notification.delivered').length === 2);
  const delivered = receiver.of('notification.delivered').map((r) => r.payload.data);
  t.same(
    delivered.map((d: Json) => d.notificationId).sort(),
    [direct, other].sort(),
    'a delivered webhook for each direct notification a stream of alice got; none for bob (no stream) nor the broadcast',
  );
  t.ok(delivered.every((d: Json) => d.user === 'alice' && typeof d.deliveredAt === 'string'));

  t.equal((await s.request('POST', `/notifications/${direct}/read`, 'alice')).status, 200);
  t.equal((await s.request('DELETE', `/notifications/${other}`, 'alice')).status, 204);
  const all = (await s.request('POST', '/notifications/read-all', 'alice')).body.upTo as number;
  await receiver.waitFor(() => receiver.of('notification.read').length === 2 && receiver.of('notification.deleted').length === 1);
  t.ok(receiver.requests.every((r) => r.verified), 'every request verifies with standardwebhooks');
  const [read, readAll] = receiver.of('notification.read').map((r) => r.payload.data);
  t.match(read, { user: 'alice', notificationId: direct, readAt: String });
  t.match(readAll, { user: 'alice', upTo: all, readAt: String }, 'mark-all-read: one event with the watermark');
  t.notOk('notificationId' in readAll);
  t.match(receiver.of('notification.deleted')[0]!.payload.data, { user: 'alice', notificationId: other, deletedAt: String });

  const items = (await s.request('GET', '/notifications', 'alice')).body.items as Json[];
  const byId = new Map(items.map((i) => [i.id, i]));
  t.equal(byId.get(direct).deliveredAt, delivered.find((d: Json) => d.notificationId === direct).deliveredAt, 'deliveredAt in history');
  t.equal(byId.get(direct).readAt, read.readAt, 'readAt of a single read: its time, not the later read-all');
  t.equal(byId.get(broadcast).deliveredAt, null, 'no delivered receipt for a broadcast');
  t.equal(byId.get(broadcast).readAt, readAll.readAt, 'readAt of an item under the watermark: the time of the read-all');
  t.notOk(byId.has(other), 'deleted');

  const bob = (await s.request('GET', '/notifications', 'bob')).body.items as Json[];
  t.match(bob.find((i) => i.id === other), { deliveredAt: null, readAt: null, read: false }, "bob's receipts are his own");
}

t.test('SQLite: delivered, read, read-all and deleted webhooks, signed; receipts in history', (t) => receiptsAndEvents(t, {}));

/** Retention by age drops the read-all times it passed: they cover no notification any more. */
async function readAllTimesPruned(t: Test, store: Record<string, string>, count: (s: Server) => Promise<number>): Promise<void> {
  const s = await startServer({ env: store });
  t.teardown(() => s.close());
  await s.publish({ user: 'hana', title: 'old' });
  await s.request('POST', '/notifications/read-all', 'hana');
  await s.request('POST', '/notifications/read-all', 'ivan');
  t.equal(await count(s), 2, 'one row per read-all');
  await s.store.prune({ olderThan: new Date(Date.now() + 60_000) });
  t.equal(await count(s), 0, 'gone with the notifications they covered');
  const kept = (await s.publish({ user: 'hana', title: 'new' })).body.id as number;
  await s.request('POST', '/notifications/read-all', 'hana');
  t.equal(await count(s), 1);
  t.match((await s.request('GET', '/notifications', 'hana')).body.items, [{ id: kept, read: true, readAt: String }]);
}

t.test('SQLite: retention drops the read-all times it passed', (t) =>
  readAllTimesPruned(t, {}, async (s) => {
    const db = new Database(s.config.store.location, { readonly: true });
    try {
      return (db.prepare('SELECT count(*) AS c FROM read_all_log').get() as { c: number }).c;
    } finally {
      db.close();
    }
  }));

t.test('a direct notification replayed on a resume is delivered then, once', async (t) => {
  const receiver = await receiverFor(t);
  const s = await serverFor(t, receiver);
  const id = (await s.publish({ user: 'gina', title: 'while away' })).body.id as number;
  await sleep(200);
  t.equal(receiver.requests.length, 0, 'no stream yet: not delivered');
  t.equal((await s.request('GET', '/notifications', 'gina')).body.items[0].deliveredAt, null, 'history alone is not delivery');
  for (let i = 0; i < 2; i++) {
    const resumed = await connect(s, 'gina', '?lastEventId=0');
    await resumed.waitFor((evs) => evs.some((e) => e.type === 'notification' && e.data.id === id));
    resumed.close();
  }
  await receiver.waitFor(() => receiver.of('notification.delivered').length === 1);
  await sleep(200);
  t.equal(receiver.requests.length, 1, 'replayed twice, reported once');
  t.match(receiver.requests[0]!.payload.data, { user: 'gina', notificationId: id });
  t.equal((await s.request('GET', '/notifications', 'gina')).body.items[0].deliveredAt, receiver.requests[0]!.payload.data.deliveredAt);
});

t.test('a failed attempt is retried with the same webhook-id until it succeeds', async (t) => {
  const receiver = await receiverFor(t);
  receiver.answer = (r) => (r.attempt < 3 ? 500 : 200);
  const s = await serverFor(t, receiver, { HERALD_WEBHOOK_MAX_ATTEMPTS: '5' });
  const id = (await s.publish({ user: 'carol', title: 'x' })).body.id as number;
  await s.request('POST', `/notifications/${id}/read`, 'carol');
  await receiver.waitFor((rs) => rs.some((r) => r.attempt === 3));
  await sleep(300);
  t.equal(new Set(receiver.requests.map((r) => r.id)).size, 1, 'one webhook');
  t.same(receiver.requests.map((r) => r.attempt), [1, 2, 3], '500, 500, then 200: three attempts and no more');
  t.same((await adminGet(s, '/webhooks/deliveries?status=pending')).body.items, [], 'delivered: it left the outbox');
});

t.test('dead after HERALD_WEBHOOK_MAX_ATTEMPTS; listed with the publisher credential, counted in /metrics, retried by hand', async (t) => {
  const receiver = await receiverFor(t);
  receiver.answer = () => 503;
  const s = await serverFor(t, receiver, { HERALD_WEBHOOK_MAX_ATTEMPTS: '3' });
  const id = (await s.publish({ user: 'dave', title: 'x' })).body.id as number;
  await s.request('DELETE', `/notifications/${id}`, 'dave');
  let dead: Json[] = [];
  const deadline = Date.now() + 10_000;
  while (dead.length === 0 && Date.now() < deadline) {
    await sleep(50);
    dead = (await adminGet(s, '/webhooks/deliveries?status=dead')).body.items;
  }
  t.equal(dead.length, 1, 'dead');
  t.match(dead[0], { event: 'notification.deleted', status: 'dead', attempts: 3, lastError: 'HTTP 503', endpoint: receiver.url, payload: { type: 'notification.deleted', data: { user: 'dave', notificationId: id } } });
  t.equal(receiver.requests.length, 3, 'exactly three attempts');
  await sleep(300);
  t.equal(receiver.requests.length, 3, 'and none after it died');

  const metrics = await (await fetch(`${s.url}/metrics`)).text();
  t.match(metrics, /herald_webhook_outbox\{status="dead"\} 1/);
  t.match(metrics, /herald_webhook_outbox\{status="pending"\} 0/);
  t.match(metrics, /herald_webhook_attempts_total\{result="failed"\} 2/);
  t.match(metrics, /herald_webhook_attempts_total\{result="dead"\} 1/);

  t.equal((await fetch(`${s.url}/webhooks/deliveries?status=dead`)).status, 401, 'no credential, no list');
  const asUser = await s.request('GET', '/webhooks/deliveries', 'dave');
  t.equal(asUser.body.code, 'token_not_publisher', 'a subscriber token is not enough');
  t.equal((await adminGet(s, '/webhooks/deliveries?status=gone')).body.code, 'validation_failed');

  receiver.answer = () => 200;
  const retry = await fetch(`${s.url}/webhooks/deliveries/${dead[0].id}/retry`, { method: 'POST', headers: publisher });
  t.same(await retry.json(), { id: dead[0].id, status: 'pending' });
  await receiver.waitFor((rs) => rs.length === 4);
  t.equal(receiver.requests[3]!.id, dead[0].id, 'the retry sends the same webhook-id');
  t.ok(receiver.requests[3]!.verified);
  await sleep(200);
  t.same((await adminGet(s, '/webhooks/deliveries?status=dead')).body.items, []);
  const again = await fetch(`${s.url}/webhooks/deliveries/${dead[0].id}/retry`, { method: 'POST', headers: publisher });
  t.equal((await again.json()).code, 'webhook_delivery_not_found', 'only a dead one can be retried');
});

t.test('each endpoint gets the events it asked for', async (t) => {
  const all = await receiverFor(t);
  const deletes = await receiverFor(t);
  const s = await serverFor(t, all, {
    HERALD_WEBHOOKS: JSON.stringify([all.url, { url: deletes.url, events: ['notification.deleted'] }]),
  });
  const id = (await s.publish({ user: 'erin', title: 'x' })).body.id as number;
  await s.request('POST', `/notifications/${id}/read`, 'erin');
  await s.request('DELETE', `/notifications/${id}`, 'erin');
  await all.waitFor(() => all.of('notification.read').length === 1 && all.of('notification.deleted').length === 1);
  await deletes.waitFor(() => deletes.of('notification.deleted').length === 1);
  await sleep(200);
  t.same(deletes.requests.map((r) => r.payload.type), ['notification.deleted']);
  t.not(deletes.requests[0]!.id, all.of('notification.deleted')[0]!.id, 'each endpoint has its own webhook-id');
});

t.test('configuration: https only unless allowed, Standard Webhooks secrets, known events', async (t) => {
  const load = (env: Record<string, string>) => () => loadConfig(env);
  t.throws(load({ HERALD_WEBHOOKS: 'http://127.0.0.1:9/x' }), new ConfigError('HERALD_WEBHOOKS: http://127.0.0.1:9/x is not https (set HERALD_WEBHOOK_ALLOW_HTTP=true for a local http receiver)'));
  t.same(load({ HERALD_WEBHOOKS: 'http://127.0.0.1:9/x', HERALD_WEBHOOK_ALLOW_HTTP: 'true' })().webhooks.endpoints, [{ url: 'http://127.0.0.1:9/x', events: null }]);
  t.same(load({ HERALD_WEBHOOKS: 'https://a.example/h, https://b.example/h' })().webhooks.endpoints.map((e) => e.url), ['https://a.example/h', 'https://b.example/h']);
  t.throws(load({ HERALD_WEBHOOKS: 'ftp://a.example/h' }), /is not https/);
  t.throws(load({ HERALD_WEBHOOKS: '[{"url":"https://a.example","events":["notification.sent"]}]' }), /"events" of https:\/\/a.example must be a non-empty list/);
  t.throws(load({ HERALD_WEBHOOKS: '[{"url":"https://a.example","secret":"x"}]' }), /entries are URLs or/);
  t.throws(load({ HERALD_WEBHOOKS: 'https://a.example,https://a.example' }), /twice/);
  t.throws(load({ HERALD_WEBHOOK_SECRET: 'whsec_c2hvcnQ=' }), /24 to 64 bytes/);
  t.throws(load({ HERALD_WEBHOOK_SECRET: Buffer.alloc(32).toString('base64') }), /must be whsec_/);
  t.equal(load({ HERALD_WEBHOOK_SECRET: webhookSecret })().webhooks.secret, webhookSecret);
});

t.test('kill -9 mid-delivery: the restarted server sends it again, same webhook-id', async (t) => {
  const receiver = await receiverFor(t);
  receiver.answer = (r) => (r.attempt === 1 ? 'hang' : 200);
  const dataDir = tempDir();
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const env = { ...quick, HERALD_WEBHOOKS: receiver.url, HERALD_DATA_DIR: dataDir, HERALD_WEBHOOK_TIMEOUT_MS: '500' };
  const first = await spawnServer(env);
  t.teardown(() => first.stop('SIGKILL'));
  const id = (await (await fetch(`${first.url}/notifications`, { method: 'POST', headers: { ...publisher, 'content-type': 'application/json' }, body: JSON.stringify({ user: 'fay', title: 'x' }) })).json()).id;
  const read = await fetch(`${first.url}/notifications/${id}/read`, { method: 'POST', headers: { authorization: `Bearer ${tokenFor('fay')}` } });
  t.equal(read.status, 200);
  await receiver.waitFor((rs) => rs.length === 1);
  t.same((await first.stop('SIGKILL')).signal, 'SIGKILL', 'killed while the receiver holds the attempt open');

  const second = await spawnServer(env);
  t.teardown(() => second.stop());
  await receiver.waitFor((rs) => rs.length === 2, 15_000);
  t.equal(receiver.requests[1]!.id, receiver.requests[0]!.id, 'the same webhook-id: the receiver can tell it is the same event');
  t.ok(receiver.requests[1]!.verified);
  t.match(receiver.requests[1]!.payload, { type: 'notification.read', data: { user: 'fay', notificationId: id } });
});

t.test('PostgreSQL', async (t) => {
  let postgres: PostgresServer;
  let redis: RedisServer;
  t.before(async () => {
    [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
  });
  t.teardown(async () => {
    await redis?.stop();
    await postgres?.stop();
  });

  t.test('receipts and events, as on SQLite', async (t) => receiptsAndEvents(t, { HERALD_STORE: await postgres.newDatabase() }));

  t.test('retention drops the read-all times it passed, as on SQLite', async (t) => {
    const url = await postgres.newDatabase();
    await readAllTimesPruned(t, { HERALD_STORE: url }, async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        return Number((await c.query<{ c: string }>('SELECT count(*) AS c FROM read_all_log')).rows[0]!.c);
      } finally {
        await c.end();
      }
    });
  });

  t.test('two instances on PostgreSQL + Redis send each webhook once', async (t) => {
    const receiver = await receiverFor(t);
    const env = { HERALD_STORE: await postgres.newDatabase(), HERALD_BUS: redis.url };
    const a = await serverFor(t, receiver, env);
    const b = await serverFor(t, receiver, env);
    // A stream of each user on each instance: both hubs see every delivery and race to record it.
    const users = ['u1', 'u2', 'u3'];
    for (const s of [a, b]) {
      for (const u of users) {
        const c = await connect(s, u);
        t.teardown(() => c.close());
      }
    }
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) ids.push((await (i % 2 ? a : b).publish({ users, title: `n${i}` })).body.id);
    for (const [i, id] of ids.entries()) await (i % 2 ? b : a).request('POST', `/notifications/${id}/read`, users[i % 3]!);
    await receiver.waitFor(() => receiver.of('notification.delivered').length >= 60 && receiver.of('notification.read').length >= 20);
    await sleep(500);
    const delivered = receiver.of('notification.delivered').map((r) => `${r.payload.data.user}:${r.payload.data.notificationId}`);
    t.equal(delivered.length, 60, 'one delivered webhook per (user, notification), though two instances delivered each');
    t.equal(new Set(delivered).size, 60);
    t.equal(receiver.requests.length, 80, 'no webhook sent twice: each claimed by one instance');
    t.equal(new Set(receiver.requests.map((r) => r.id)).size, 80);
  });
});
