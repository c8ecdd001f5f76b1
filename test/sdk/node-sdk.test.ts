// @herald/node (packages/node) against a real Herald: each target, retries under one idempotency key
// through a real loopback server that fails first, no retry on a 4xx, minted tokens that /events
// accepts, and generated types that match the current server's OpenAPI document.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import t from 'tap';
import { Herald, HeraldError } from '../../packages/node/src/index.js';
import { generatedTypes, typesFile } from '../../packages/node/scripts/generate.js';
import { startServer, type Server } from '../support/server.js';
import { SseClient } from '../support/sse.js';
import { jwtSecret, publisherKey } from '../support/tokens.js';

/** A loopback HTTP server in front of Herald: answers the first requests itself as `script` says, then forwards. */
async function flaky(target: Server, script: ('forward-then-503' | '503' | '429')[]) {
  const seen: { key: string | undefined }[] = [];
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    seen.push({ key: req.headers['idempotency-key'] as string | undefined });
    const step = script.shift();
    if (step === '503') return void res.writeHead(503).end('upstream down');
    if (step === '429') return void res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' }).end('{"code":"publish_rate_limited","message":"slow down"}');
    const up = await fetch(target.url + req.url, { method: req.method, headers: req.headers as Record<string, string>, body: Buffer.concat(chunks) });
    const text = await up.text();
    // Herald committed it, but its answer is lost on the way back: the client must retry.
    if (step === 'forward-then-503') return void res.writeHead(503).end();
    res.writeHead(up.status, { 'content-type': 'application/json', ...(up.headers.get('idempotent-replayed') ? { 'idempotent-replayed': 'true' } : {}) }).end(text);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const fast = { retries: 3, minDelayMs: 20, maxDelayMs: 100 };

t.test('publish to each target; the answer is the stored notification', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const herald = new Herald({ url: s.url, publisherKey });
  const toUser = await herald.publish({ user: 'alice', title: 'one', url: '/x', actor: { name: 'Ada' } });
  t.match(toUser, { title: 'one', users: ['alice'], url: '/x', actor: { name: 'Ada' }, icon: null });
  t.same((await herald.publish({ users: ['alice', 'bob'], title: 'two' })).users, ['alice', 'bob']);
  t.equal((await herald.publish({ topic: 'news', title: 'three' })).topic, 'news');
  t.equal((await herald.publish({ broadcast: true, title: 'four' })).broadcast, true);
  const history = (await s.request('GET', '/notifications', 'alice')).body.items.map((n: { title: string }) => n.title);
  t.same(history, ['four', 'two', 'one'], 'alice has hers and the broadcast');
});

t.test('a lost answer is retried under the same key: one notification, not two', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const proxy = await flaky(s, ['forward-then-503', '503']);
  t.teardown(() => proxy.close());
  const herald = new Herald({ url: proxy.url, publisherKey, ...fast });
  const n = await herald.publish({ user: 'alice', title: 'once' });
  t.equal(proxy.seen.length, 3, 'two failures, then success');
  t.ok(proxy.seen[0]!.key, 'a key was generated');
  t.same(new Set(proxy.seen.map((x) => x.key)).size, 1, 'the same key on every attempt');
  t.same((await s.request('GET', '/notifications', 'alice')).body.items.map((x: { id: number }) => x.id), [n.id], 'stored once');
  await herald.publish({ user: 'alice', title: 'again' });
  t.not(proxy.seen[3]!.key, proxy.seen[0]!.key, 'a new call, a new key');

  const given = await flaky(s, ['503']);
  t.teardown(() => given.close());
  await new Herald({ url: given.url, publisherKey, ...fast }).publish({ user: 'alice', title: 'k' }, { idempotencyKey: 'order-1' });
  t.same(given.seen.map((x) => x.key), ['order-1', 'order-1'], 'a given key is used as it is');
});

t.test('429 waits for Retry-After; a 4xx is not retried; retries give up with the last error', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const limited = await flaky(s, ['429']);
  t.teardown(() => limited.close());
  const started = Date.now();
  await new Herald({ url: limited.url, publisherKey, ...fast }).publish({ user: 'alice', title: 'later' });
  t.ok(Date.now() - started >= 950, `waited ${Date.now() - started} ms for Retry-After: 1`);

  const plain = await flaky(s, []);
  t.teardown(() => plain.close());
  const herald = new Herald({ url: plain.url, publisherKey, ...fast });
  // @ts-expect-error two targets: the types refuse it; Herald does too, if types are bypassed.
  const bad = herald.publish({ user: 'alice', topic: 'news', title: 'x' });
  await t.rejects(bad, { name: 'HeraldError', status: 400, code: 'validation_failed', retryable: false });
  t.equal(plain.seen.length, 1, 'a 400 is not retried');
  await t.rejects(new Herald({ url: s.url, publisherKey: 'wrong' }).publish({ user: 'a', title: 'x' }), { status: 401, code: 'publisher_credential_invalid' });

  const down = await flaky(s, ['503', '503', '503', '503']);
  t.teardown(() => down.close());
  const err = await new Herald({ url: down.url, publisherKey, ...fast }).publish({ user: 'alice', title: 'x' }).catch((e: unknown) => e);
  t.ok(err instanceof HeraldError);
  t.match(err, { status: 503, code: 'http_503', retryable: true });
  t.equal(down.seen.length, 4, 'the first attempt and 3 retries');
  const nowhere = await new Herald({ url: 'http://127.0.0.1:1', publisherKey, retries: 1, minDelayMs: 10 }).publish({ user: 'a', title: 'x' }).catch((e: unknown) => e);
  t.match(nowhere, { code: 'network_error', status: 0, retryable: true });
});

t.test('mintSubscriberToken: a token /events accepts, with its topics', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const herald = new Herald({ url: s.url, publisherKey, jwtSecret });
  const token = herald.mintSubscriberToken('alice', { topics: ['deploys'], expiresIn: '5m' });
  const [, payload] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
  t.match(claims, { sub: 'alice', topics: ['deploys'] });
  t.ok((claims.exp as number) - (claims.iat as number) === 300, 'expires in 5 minutes');
  const c = new SseClient(`${s.url}/events?topic=deploys`, token);
  t.teardown(() => c.close());
  await c.opened;
  await c.unread.waitFor((x) => x.length === 1);
  await herald.publish({ topic: 'deploys', title: 'v2' });
  await c.waitFor((e) => e.length === 1);
  t.equal(c.events[0]!.data.title, 'v2');
  const refused = await fetch(`${s.url}/events?topic=secrets`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(refused.status, 403, 'topics beyond the claim are refused');
  t.throws(() => new Herald({ url: s.url }).mintSubscriberToken('a'), /jwtSecret/);
});

t.test('the committed types are what the current server generates', async (t) => {
  t.equal(await generatedTypes(), readFileSync(typesFile, 'utf8'), 'run `npm run build && npm run generate -w @herald/node`');
});
