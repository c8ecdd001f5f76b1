// Web Push end to end: subscriptions, the queue and its sender, against a loopback push service that
// verifies the VAPID JWT and decrypts the aes128gcm payload (test/support/push-service.ts).
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getPriority } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { senderNice } from '../../src/push/sender.js';
import { sleep, tempDir } from '../../support/util.js';
import { PushService } from '../support/push-service.js';
import { spawnServer, startServer, type Server } from '../support/server.js';
import { connect } from '../support/sse.js';
import { publisherKey, tokenFor } from '../support/tokens.js';
import { keepLoopBusy, waitUntil } from '../support/wait.js';

const pushEnv = { HERALD_PUSH_ALLOW_LOOPBACK_HTTP: 'true', HERALD_PUSH_RETRY_BASE_MS: '100', HERALD_PUSH_POLL_MS: '100' };

async function setup(t: Test, env: Record<string, string> = {}): Promise<{ s: Server; push: PushService; key: string }> {
  const s = await startServer({ env: { ...pushEnv, ...env } });
  t.teardown(() => s.close());
  const key = (await s.request('GET', '/push/vapid-public-key', null)).body.publicKey as string;
  const push = new PushService(() => key);
  await push.start();
  t.teardown(() => push.close());
  return { s, push, key };
}

async function subscribe(s: Server, user: string, sub: unknown): Promise<void> {
  const r = await s.request('POST', '/push/subscriptions', user, sub);
  if (r.status !== 201) throw new Error(`subscribe answered ${r.status}: ${JSON.stringify(r.body)}`);
}

t.test('the VAPID key, and subscriptions: https only, loopback http only when configured, valid keys', async (t) => {
  const { s, push, key } = await setup(t);
  t.equal(Buffer.from(key, 'base64url').length, 65, 'an uncompressed P-256 point');
  const d = push.device('d1');
  t.equal((await s.request('POST', '/push/subscriptions', null, d.subscription)).status, 401);
  t.equal((await s.request('POST', '/push/subscriptions', 'alice', d.subscription)).status, 201);
  const bad: [string, unknown][] = [
    ['plain http elsewhere', { ...d.subscription, endpoint: 'http://example.com/push/x' }],
    ['not a URL', { ...d.subscription, endpoint: 'nope' }],
    ['credentials in the URL', { ...d.subscription, endpoint: 'https://u:p@push.example/x' }],
    ['ftp', { ...d.subscription, endpoint: 'ftp://push.example/x' }],
    ['no keys', { endpoint: 'https://push.example/x' }],
    ['short key', { ...d.subscription, keys: { p256dh: 'abc', auth: d.auth } }],
    ['unknown field', { ...d.subscription, extra: 1 }],
  ];
  for (const [what, body] of bad) {
    const r = await s.request('POST', '/push/subscriptions', 'alice', body);
    t.equal(r.status, 400, what);
    t.equal(r.body.code, 'validation_failed', what);
  }
  t.equal((await s.request('POST', '/push/subscriptions', 'alice', { ...d.subscription, endpoint: 'https://push.example/x' })).status, 201);

  const strict = await startServer();
  t.teardown(() => strict.close());
  const refused = await strict.request('POST', '/push/subscriptions', 'alice', d.subscription);
  t.equal(refused.status, 400, 'loopback http refused without HERALD_PUSH_ALLOW_LOOPBACK_HTTP');
  t.match(refused.body.message, /https/);

  t.equal((await s.request('DELETE', '/push/subscriptions', 'bob', d.subscription)).status, 204, "bob's DELETE of alice's is a no-op");
  await s.publish({ user: 'alice', title: 'still subscribed' });
  await push.waitFor((p) => p.length === 1);
  t.equal((await s.request('DELETE', '/push/subscriptions', 'alice', { endpoint: d.subscription.endpoint })).status, 204);
  await s.publish({ user: 'alice', title: 'unsubscribed' });
  await sleep(500);
  t.equal(push.pushes.length, 1, 'nothing after DELETE');
});

t.test('an offline user gets each direct notification on every device, signed and encrypted; an online one does not', async (t) => {
  const { s, push } = await setup(t);
  const [phone, laptop, bobs] = [push.device('phone'), push.device('laptop'), push.device('bob')];
  await subscribe(s, 'alice', phone.subscription);
  await subscribe(s, 'alice', laptop.subscription);
  await subscribe(s, 'bob', bobs.subscription);
  const stream = await connect(s, 'bob');
  t.teardown(() => stream.close());

  const n = await s.publish({ users: ['alice', 'bob'], title: 'Deploy done', body: 'v42', type: 'deploy', data: { url: '/deploys/42' }, critical: true });
  await push.waitFor((p) => p.length === 2);
  await s.publish({ topic: 'news', title: 'topics are not pushed' });
  await s.publish({ broadcast: true, title: 'nor broadcasts' });
  await sleep(500);
  t.same(push.pushes.map((p) => p.device).sort(), ['laptop', 'phone'], 'alice on both devices; bob has a stream open');
  const p = push.ofDevice('phone')[0]!;
  t.match(p.payload, { id: n.body.id, title: 'Deploy done', body: 'v42', type: 'deploy', data: { url: '/deploys/42' }, critical: true });
  t.notOk('users' in p.payload, 'no recipient list');
  t.equal(p.claims.sub, 'mailto:herald@localhost');
  t.equal(p.urgency, 'high', 'critical is urgent');

  stream.close();
  await sleep(200);
  await s.publish({ user: 'bob', title: 'now offline' });
  await push.waitFor((x) => x.some((y) => y.device === 'bob'));
  t.pass('bob gets it once his stream is closed');
});

t.test('one VAPID JWT per push service origin, valid for hours, reused across pushes', async (t) => {
  const { s, push } = await setup(t);
  await subscribe(s, 'alice', push.device('phone').subscription);
  await subscribe(s, 'alice', push.device('laptop').subscription);
  for (let i = 0; i < 10; i++) await s.publish({ user: 'alice', title: `n${i}` });
  await push.waitFor((p) => p.length === 20);
  t.equal(new Set(push.pushes.map((p) => p.jwt)).size, 1, '20 pushes to one origin, one signature');
  const { exp, aud } = push.pushes[0]!.claims;
  t.equal(aud, push.url);
  const hoursLeft = (exp * 1000 - Date.now()) / 3_600_000;
  t.ok(hoursLeft > 11 && hoursLeft <= 12, `expires in ${hoursLeft.toFixed(2)} h: within the 24 h push services accept`);
});

/** The nice value of each thread of this process, from /proc (field 19 of stat, after the command's closing parenthesis). */
function threadNices(): number[] {
  return readdirSync('/proc/self/task').flatMap((tid) => {
    try {
      return [Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16])];
    } catch {
      return []; // the thread ended while listed
    }
  });
}

t.test('pushes are encrypted and sent in a thread of lower priority than publishing', { skip: !existsSync('/proc/thread-self') && 'no /proc/thread-self' }, async (t) => {
  const before = threadNices();
  t.notOk(before.includes(senderNice), `no thread at nice ${senderNice} before a push`);
  const { s, push } = await setup(t);
  await subscribe(s, 'alice', push.device('phone').subscription);
  await s.publish({ user: 'alice', title: 'low priority' });
  await push.waitFor((p) => p.length === 1);
  t.equal(threadNices().filter((n) => n === senderNice).length, 1, `the sender thread alone runs at nice ${senderNice}`);
  t.equal(getPriority(), 0, 'the process itself (its main thread) is left as it was');
});

/** Publishes to alice; resolves with the ms until her `count`th push arrived. */
async function timedPush(s: Server, push: PushService, title: string, count: number, waitMs?: number): Promise<number> {
  const start = performance.now();
  await s.publish({ user: 'alice', title });
  await push.waitFor((p) => p.length === count, waitMs);
  return performance.now() - start;
}

t.test('pushes give way while the event loop is busy, and still go out while it stays busy', async (t) => {
  const { s, push } = await setup(t);
  await subscribe(s, 'alice', push.device('phone').subscription);
  const idleMs = await timedPush(s, push, 'idle', 1);
  const stop = keepLoopBusy(t);
  await sleep(200);
  const busyMs = await timedPush(s, push, 'busy', 2);
  stop();
  t.ok(busyMs >= 200, `held back while the loop is busy: ${busyMs.toFixed(0)} ms (on an idle loop: ${idleMs.toFixed(0)} ms)`);
  t.ok(busyMs < 5000, 'but not for long: a busy loop slows pushes, never stops them');
});

t.test('after a batch that waited on a slow push service, a busy loop holds the next back 5 s at most', async (t) => {
  const { s, push } = await setup(t);
  await subscribe(s, 'alice', push.device('phone').subscription);
  // The push service takes 1.5 s to answer: that batch lasts as long, and 9 times it would be 13.5 s.
  push.script.set('phone', [{ status: 201, delayMs: 1500 }]);
  await timedPush(s, push, 'slow', 1);
  await sleep(1700);
  const stop = keepLoopBusy(t);
  await sleep(200);
  const ms = await timedPush(s, push, 'next', 2, 15_000);
  stop();
  t.ok(ms >= 200, `held back while the loop is busy: ${ms.toFixed(0)} ms`);
  t.ok(ms < 9000, `for about the 5 s cap, not 9 times the slow batch: ${ms.toFixed(0)} ms`);
});

t.test('preferences: push never, always, per-type switches', async (t) => {
  const { s, push } = await setup(t);
  await subscribe(s, 'alice', push.device('a').subscription);
  const c = await connect(s, 'alice');
  t.teardown(() => c.close());
  await s.request('PUT', '/preferences', 'alice', { push: 'always', types: { chat: { push: false } } });
  const chat = await s.publish({ user: 'alice', type: 'chat', title: 'chat' });
  const mention = await s.publish({ user: 'alice', type: 'mention', title: 'mention' });
  await push.waitFor((p) => p.length >= 1);
  await sleep(400);
  t.same(push.pushes.map((p) => p.payload.id), [mention.body.id], `always: sent while online; chat ${chat.body.id} switched off`);
  await s.request('PUT', '/preferences', 'alice', { push: 'never' });
  await s.publish({ user: 'alice', type: 'mention', title: 'never', critical: true });
  await sleep(500);
  t.equal(push.pushes.length, 1, 'never: nothing, critical or not');
});

t.test('429 and 5xx are retried with backoff (Retry-After honoured); 404/410 remove the subscription', async (t) => {
  const { s, push } = await setup(t);
  await subscribe(s, 'alice', push.device('flaky').subscription);
  await subscribe(s, 'alice', push.device('gone').subscription);
  push.script.set('flaky', [{ status: 503 }, { status: 429, headers: { 'retry-after': '1' } }]);
  push.script.set('gone', [{ status: 410 }]);
  const started = Date.now();
  const n = await s.publish({ user: 'alice', title: 'retried' });
  await push.waitFor((p) => p.length === 1);
  t.ok(Date.now() - started >= 1000, 'waited for Retry-After: 1 after the 429');
  t.same(
    push.log.filter((l) => l.device === 'flaky').map((l) => l.status),
    [503, 429, 201],
  );
  t.equal(push.pushes[0]!.payload.id, n.body.id);
  await s.publish({ user: 'alice', title: 'after' });
  await push.waitFor((p) => p.length === 2);
  await sleep(300);
  t.same(push.log.filter((l) => l.device === 'gone').map((l) => l.status), [410], 'the 410 subscription was removed: never tried again');
});

t.test('quiet hours: pushes are held, then sent as one summary when the window ends', async (t) => {
  const { s, push } = await setup(t);
  await subscribe(s, 'alice', push.device('a').subscription);
  // A window around now in UTC, ending two minutes from now.
  const hhmm = (d: Date) => d.toISOString().slice(11, 16);
  const now = Date.now();
  await s.request('PUT', '/preferences', 'alice', { quietHours: { start: hhmm(new Date(now - 60_000)), end: hhmm(new Date(now + 120_000)), timeZone: 'UTC' } });
  const ids = [];
  for (const title of ['one', 'two', 'three']) ids.push((await s.publish({ user: 'alice', title })).body.id);
  const critical = await s.publish({ user: 'alice', title: 'critical', critical: true });
  await push.waitFor((p) => p.length === 1);
  await sleep(500);
  t.same(push.pushes.map((p) => p.payload.id), [critical.body.id], 'only the critical one during quiet hours');
  // The window's end, brought forward: the held jobs come due now.
  const db = new Database(join(s.dataDir, 'herald.db'));
  t.teardown(() => db.close());
  t.equal(db.prepare('UPDATE push_jobs SET due_at = 0 WHERE held = 1').run().changes, 3, 'three held');
  await s.request('PUT', '/preferences', 'alice', {});
  await push.waitFor((p) => p.length === 2);
  await sleep(300);
  t.match(push.pushes[1]!.payload, { summary: true, count: 3, ids, title: '3 new notifications', body: 'one\ntwo\nthree' });
});

t.test('kill -9 with a push pending: the restarted server sends it', async (t) => {
  const dataDir = tempDir();
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const env = { ...pushEnv, HERALD_DATA_DIR: dataDir, HERALD_PUSH_RETRY_BASE_MS: '2000', LOG_LEVEL: 'silent' };
  let child = await spawnServer(env);
  const key = ((await (await fetch(`${child.url}/push/vapid-public-key`)).json()) as { publicKey: string }).publicKey;
  const push = new PushService(() => key);
  await push.start();
  t.teardown(() => push.close());
  const d = push.device('d');
  const post = (path: string, auth: string, body: unknown) =>
    fetch(child.url + path, { method: 'POST', headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  t.equal((await post('/push/subscriptions', tokenFor('alice'), d.subscription)).status, 201);
  push.script.set('d', [{ status: 503 }]);
  const killed = new Promise<void>((resolve) => (push.onAnswer = () => resolve()));
  const n = (await (await post('/notifications', publisherKey, { user: 'alice', title: 'survives' })).json()) as { id: number };
  await killed;
  // Killed once the retry is recorded (a kill mid-send instead leaves the job leased: it is sent
  // again once its lease, a minute, runs out).
  const db = new Database(join(dataDir, 'herald.db'), { readonly: true });
  await waitUntil('the retry recorded', () => (db.prepare('SELECT attempts FROM push_jobs').get() as { attempts: number } | undefined)?.attempts === 1);
  db.close();
  t.match(await child.stop('SIGKILL'), { signal: 'SIGKILL' }, 'killed after the first try failed, the retry pending');
  child = await spawnServer(env);
  t.teardown(() => child.stop());
  await push.waitFor((p) => p.length === 1, 15_000);
  t.equal(push.pushes[0]!.payload.id, n.id);
  t.same(push.log.map((l) => l.status), [503, 201], 'tried once before the kill, sent once after');
  t.equal(((await (await fetch(`${child.url}/push/vapid-public-key`)).json()) as { publicKey: string }).publicKey, key, 'the VAPID key was kept');
});

t.test('kill -9 with notifications committed while the sender was stuck: the restarted server queues and sends them', async (t) => {
  const dataDir = tempDir();
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const env = { ...pushEnv, HERALD_DATA_DIR: dataDir, LOG_LEVEL: 'silent' };
  let child = await spawnServer(env);
  t.teardown(() => child.stop());
  const key = ((await (await fetch(`${child.url}/push/vapid-public-key`)).json()) as { publicKey: string }).publicKey;
  const push = new PushService(() => key);
  await push.start();
  t.teardown(() => push.close());
  // A push service that takes a request and never answers: the sender waits on it (its timeout is 15 s).
  const stuck = createServer(() => {});
  const asked = new Promise<void>((resolve) => stuck.once('request', () => resolve()));
  await new Promise<void>((resolve) => stuck.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => (stuck.closeAllConnections(), stuck.close(() => resolve()))));
  const post = async (path: string, auth: string, body: unknown) => {
    const res = await fetch(child.url + path, { method: 'POST', headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (res.status !== 201) throw new Error(`${path} answered ${res.status}`);
    return res;
  };
  const { port } = stuck.address() as AddressInfo;
  await post('/push/subscriptions', tokenFor('alice'), { ...push.device('x').subscription, endpoint: `http://127.0.0.1:${port}/push/x` });
  await post('/push/subscriptions', tokenFor('bob'), push.device('bob').subscription);
  const publish = async (user: string, title: string) => ((await (await post('/notifications', publisherKey, { user, title })).json()) as { id: number }).id;
  const first = await publish('alice', 'stuck');
  await asked;
  const ids: number[] = [];
  for (let i = 0; i < 5; i++) ids.push(await publish('bob', `n${i}`));
  const db = new Database(join(dataDir, 'herald.db'), { readonly: true });
  t.same(db.prepare(`SELECT notification_id FROM push_jobs WHERE user_id = 'bob'`).all(), [], "bob's five are committed without a job");
  t.equal((db.prepare('SELECT last_id FROM push_cursor').get() as { last_id: number }).last_id, first, 'the cursor below them');
  db.close();
  t.match(await child.stop('SIGKILL'), { signal: 'SIGKILL' }, 'killed with the sender still waiting');
  child = await spawnServer(env);
  await push.waitFor((p) => p.length === 5, 15_000);
  await sleep(300);
  t.same(push.ofDevice('bob').map((p) => p.payload.id as number).sort((a, b) => a - b), ids, 'each of the five sent once, after the restart');
});

t.test('the service worker is served from the root, so its scope is the whole origin', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const res = await fetch(`${s.url}/sw.js`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /javascript/);
  const text = await res.text();
  for (const handler of ["'push'", "'notificationclick'", "'herald-token'"]) t.ok(text.includes(handler), handler);
});
