// Signed webhooks from the durable outbox and per-recipient receipts, against real servers: a real
// Herald on SQLite, a loopback receiver that verifies every signature with `standardwebhooks`.
// PostgreSQL (and two instances on PostgreSQL + Redis): webhooks-postgres.test.ts.
import { rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config.js';
import { sleep, tempDir } from '../../support/util.js';
import type { Json } from '../support/http.js';
import { spawnServer } from '../support/server.js';
import { connect } from '../support/sse.js';
import { tokenFor } from '../support/tokens.js';
import { keepLoopBusy } from '../support/wait.js';
import { webhookSecret } from '../support/webhook-receiver.js';
import { adminGet, deadWebhooksPruned, publisher, quick, readAllTimesPruned, receiptsAndEvents, receiverFor, serverFor } from '../support/webhooks.js';

t.test('SQLite: delivered, read, read-all and deleted webhooks, signed; receipts in history', (t) => receiptsAndEvents(t, {}));

t.test('SQLite: retention drops the read-all times it passed', (t) =>
  readAllTimesPruned(t, {}, async (s) => {
    const db = new Database(s.config.store.location, { readonly: true });
    try {
      return (db.prepare('SELECT count(*) AS c FROM read_all_log').get() as { c: number }).c;
    } finally {
      db.close();
    }
  }));

t.test('SQLite: retention drops dead webhooks older than its cutoff, and only those', (t) => deadWebhooksPruned(t, {}));

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

t.test('webhooks give way while the event loop is busy, and still go out while it stays busy', async (t) => {
  const receiver = await receiverFor(t);
  // No polling meanwhile: the dispatcher looks when the read wakes it, so the wait is measured from there.
  const s = await serverFor(t, receiver, { HERALD_WEBHOOK_POLL_MS: '60000' });
  /** Ms from a user's read to its webhook's arrival. */
  const timedRead = async (user: string): Promise<number> => {
    const id = (await s.publish({ user, title: 'x' })).body.id as number;
    const start = performance.now();
    await s.request('POST', `/notifications/${id}/read`, user);
    await receiver.waitFor(() => receiver.of('notification.read').some((r) => r.payload.data.user === user));
    return performance.now() - start;
  };
  const idleMs = await timedRead('ida');
  const stop = keepLoopBusy(t);
  await sleep(500);
  const busyMs = await timedRead('ben');
  stop();
  t.ok(busyMs >= 250, `held back while the loop is busy: ${busyMs.toFixed(0)} ms (on an idle loop: ${idleMs.toFixed(0)} ms)`);
  t.ok(busyMs < 5000, 'but not for long: a busy loop slows webhooks, never stops them');
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

