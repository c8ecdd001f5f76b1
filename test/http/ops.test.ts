// Operations: liveness and readiness probes, Prometheus metrics, the OpenAPI document, and logs
// with request ids and no credentials in them.
import { rmSync } from 'node:fs';
import net from 'node:net';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { sleep, tempDir } from '../../support/util.js';
import { rawGet } from '../support/http.js';
import { spawnServer, startServer, type Server } from '../support/server.js';
import { connect } from '../support/sse.js';
import { publisherKey, tokenFor } from '../support/tokens.js';

/** One sample from Prometheus text: `name{labels} value`; labels must match exactly as written. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function scrape(s: Server, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(`${s.url}/metrics`, { headers });
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  return res.text();
}

t.test('GET /health is liveness, with no credentials', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const res = await s.request('GET', '/health', null);
  t.equal(res.status, 200);
  t.same(res.body, { status: 'ok' });
});

t.test('GET /ready checks the store and the bus, and is 503 with a JSON body when the store is gone', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const ok = await s.request('GET', '/ready', null);
  t.equal(ok.status, 200);
  t.same(ok.body, { status: 'ready', checks: { store: 'ok', bus: 'ok' } });

  await s.store.close();
  const down = await s.request('GET', '/ready', null);
  t.equal(down.status, 503);
  t.same(down.body, {
    statusCode: 503,
    code: 'not_ready',
    error: 'Service Unavailable',
    message: 'not ready: store unreachable',
    checks: { store: 'unreachable', bus: 'ok' },
  });
  t.equal((await s.request('GET', '/health', null)).status, 200, 'still alive: a restart would not help the store');
});

t.test('GET /metrics: streams, publishes, deliveries, catch-up, latencies and process metrics', async (t) => {
  const s = await startServer({ env: { HERALD_CATCHUP_LIMIT: '5' } });
  t.teardown(() => s.close());
  const before = await scrape(s);
  t.equal(sample(before, 'herald_open_streams'), 0);
  t.ok(sample(before, 'process_cpu_user_seconds_total')! >= 0, 'default process metrics');
  t.ok(sample(before, 'nodejs_heap_size_used_bytes')! > 0, 'default Node.js metrics');

  const a1 = await connect(s, 'alice', '?topic=news', {}, { topics: ['news'] });
  const a2 = await connect(s, 'alice');
  const b = await connect(s, 'bob');
  t.teardown(() => [a1, a2, b].forEach((c) => c.close()));
  t.equal(sample(await scrape(s), 'herald_open_streams'), 3, 'three open streams');

  const toAlice = await s.publish({ user: 'alice', title: 'one' }); // 2 streams
  await s.publish({ users: ['alice', 'bob'], title: 'two' }); // 3 streams
  await s.publish({ topic: 'news', title: 'three' }); // 1 stream
  await s.publish({ broadcast: true, title: 'four' }); // 3 streams
  // A replay answers the first result and publishes nothing new.
  await s.publish({ user: 'bob', title: 'five' }, { 'idempotency-key': 'k1' });
  await s.publish({ user: 'bob', title: 'five' }, { 'idempotency-key': 'k1' }); // 1 stream, once
  await a1.waitFor((e) => e.length >= 4);
  await b.waitFor((e) => e.length >= 3);

  let text = await scrape(s);
  t.equal(sample(text, 'herald_notifications_published_total', 'target="users"'), 3);
  t.equal(sample(text, 'herald_notifications_published_total', 'target="topic"'), 1);
  t.equal(sample(text, 'herald_notifications_published_total', 'target="broadcast"'), 1);
  t.equal(sample(text, 'herald_events_delivered_total', 'source="live"'), 2 + 3 + 1 + 3 + 1, 'live deliveries, counted per stream');
  t.equal(sample(text, 'herald_publish_duration_seconds_count'), 5, 'one publish latency per committed publish');
  t.ok(sample(text, 'herald_publish_duration_seconds_sum')! > 0);
  t.equal(sample(text, 'herald_delivery_latency_seconds_count'), 5, 'one delivery latency per fan-out');
  t.equal(sample(text, 'herald_delivery_latency_seconds_bucket', 'le="+Inf"'), 5);

  // Catch-up: alice resumes after her first notification and misses three; then one ahead of the server.
  const resumed = await connect(s, 'alice', '', { 'last-event-id': String(toAlice.body.id) });
  t.teardown(() => resumed.close());
  await resumed.waitFor((e) => e.length >= 2);
  const ahead = await connect(s, 'bob', '', { 'last-event-id': '999999' });
  t.teardown(() => ahead.close());
  await ahead.waitFor((e) => e.some((x) => x.type === 'reload'));
  text = await scrape(s);
  t.equal(sample(text, 'herald_catchup_size_count'), 1, 'one replay');
  t.equal(sample(text, 'herald_catchup_size_sum'), 2, 'of two notifications (two, four)');
  t.equal(sample(text, 'herald_catchup_size_bucket', 'le="1"'), 0);
  t.equal(sample(text, 'herald_catchup_size_bucket', 'le="10"'), 1);
  t.equal(sample(text, 'herald_events_delivered_total', 'source="catchup"'), 2);
  t.equal(sample(text, 'herald_catchup_reloads_total', 'reason="ahead-of-server"'), 1);
  t.equal(sample(text, 'herald_open_streams'), 5);
  t.match(text, /# TYPE herald_slow_consumers_dropped_total counter/);
});

t.test('a client that stops reading is counted as a dropped slow consumer', async (t) => {
  const s = await startServer({ env: { HERALD_MAX_PENDING_BYTES: '1024' } });
  t.teardown(() => s.close());
  // A raw socket that sends the request and then never reads: the kernel buffers fill, then the server's.
  const sock = net.connect(Number(new URL(s.url).port), '127.0.0.1');
  t.teardown(() => sock.destroy());
  await new Promise((r) => sock.once('connect', r));
  sock.write(`GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokenFor('slow')}\r\n\r\n`);
  sock.pause();
  await sleep(200);
  const big = 'x'.repeat(19_000);
  let dropped = 0;
  for (let i = 0; i < 2000 && dropped === 0; i += 10) {
    await Promise.all(Array.from({ length: 10 }, () => s.publish({ user: 'slow', title: 't', body: big })));
    dropped = sample(await scrape(s), 'herald_slow_consumers_dropped_total') ?? 0;
  }
  t.equal(dropped, 1, 'the stream was cut and counted once');
  t.equal(sample(await scrape(s), 'herald_open_streams'), 0, 'and it is no longer open');
});

t.test('HERALD_METRICS_TOKEN protects /metrics', async (t) => {
  const token = 'metrics-token-0123456789';
  const s = await startServer({ env: { HERALD_METRICS_TOKEN: token } });
  t.teardown(() => s.close());
  for (const [name, headers] of [
    ['none', {}],
    ['wrong', { authorization: 'Bearer wrong-token-0123456789' }],
    ['the publisher key', { authorization: `Bearer ${publisherKey}` }],
  ] as const) {
    const res = await fetch(`${s.url}/metrics`, { headers });
    t.equal(res.status, 401, `${name}: 401`);
    t.same(await res.json(), { statusCode: 401, code: 'metrics_token_required', error: 'Unauthorized', message: 'a metrics token is required (Authorization: Bearer)' });
  }
  t.match(await scrape(s, { authorization: `Bearer ${token}` }), /herald_open_streams 0/);
});

t.test('the OpenAPI document lists every route with its schema, and the UI is served', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const res = await fetch(`${s.url}/docs/json`);
  t.equal(res.status, 200);
  const doc = (await res.json()) as {
    openapi: string;
    paths: Record<string, Record<string, { summary?: string; parameters?: { in: string; name: string }[]; requestBody?: { content: Record<string, { schema: { required?: string[]; properties?: object } }> }; responses: Record<string, unknown> }>>;
  };
  t.match(doc.openapi, /^3\./);
  // [path, method, parameters as "in:name", an error status it documents]
  const expected: [string, string, string[], string][] = [
    ['/notifications', 'post', ['header:idempotency-key'], '400'],
    ['/notifications', 'get', ['query:topic', 'query:scope', 'query:limit', 'query:before', 'query:unread', 'query:includeMuted', 'query:token'], '401'],
    ['/events', 'get', ['query:topic', 'query:lastEventId', 'query:token', 'header:last-event-id'], '401'],
    ['/ws', 'get', ['query:topic', 'query:lastEventId', 'query:token'], '426'],
    ['/notifications/unread-count', 'get', ['query:topic', 'query:scope', 'query:token'], '401'],
    ['/notifications/{id}/read', 'post', ['path:id'], '404'],
    ['/notifications/read-all', 'post', [], '401'],
    ['/notifications/{id}', 'delete', ['path:id'], '404'],
    ['/health', 'get', [], '200'],
    ['/ready', 'get', [], '503'],
    ['/metrics', 'get', [], '200'],
    ['/webhooks/deliveries', 'get', ['query:status', 'query:limit'], '401'],
    ['/webhooks/deliveries/{id}/retry', 'post', ['path:id'], '404'],
    ['/preferences', 'get', [], '401'],
    ['/preferences', 'put', [], '400'],
    ['/push/vapid-public-key', 'get', [], '200'],
    ['/push/subscriptions', 'post', [], '400'],
    ['/push/subscriptions', 'delete', [], '401'],
  ];
  t.same(
    Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`)).sort(),
    expected.map(([p, m]) => `${m} ${p}`).sort(),
    'exactly the routes Herald serves',
  );
  for (const [path, method, params, status] of expected) {
    const op = doc.paths[path]![method]!;
    t.ok(op.summary, `${method} ${path}: summary`);
    t.same((op.parameters ?? []).map((p) => `${p.in}:${p.name}`).sort(), [...params].sort(), `${method} ${path}: parameters`);
    t.ok(op.responses[status], `${method} ${path}: documents ${status}`);
  }
  const body = doc.paths['/notifications']!.post!.requestBody!.content['application/json']!.schema;
  t.same(body.required, ['title'], 'the publish body schema is there');
  t.same(Object.keys(body.properties!).sort(), ['actions', 'actor', 'body', 'broadcast', 'critical', 'data', 'icon', 'title', 'topic', 'type', 'url', 'user', 'users']);
  const ui = await fetch(`${s.url}/docs/`);
  t.equal(ui.status, 200);
  t.match(await ui.text(), /swagger/i, 'the UI');
});

t.test('HERALD_DOCS=false closes /docs: the UI and the document are a 404', async (t) => {
  const s = await startServer({ env: { HERALD_DOCS: 'false' } });
  t.teardown(() => s.close());
  for (const path of ['/docs', '/docs/', '/docs/json', '/docs/yaml', '/docs/static/index.html']) {
    const res = await fetch(`${s.url}${path}`);
    t.equal(res.status, 404, path);
    t.same(await res.json(), { statusCode: 404, code: 'route_not_found', error: 'Not Found', message: `no route for GET ${path}` });
  }
  t.equal((await fetch(`${s.url}/health`)).status, 200, 'the rest is served as before');
  t.throws(() => loadConfig({ HERALD_DOCS: 'hidden' }), { message: 'HERALD_DOCS must be true or false, got "hidden"' });
});

t.test('logs: JSON lines with request ids, and no token from a header, the query or a cookie', async (t) => {
  const dataDir = tempDir();
  const server = await spawnServer({ LOG_LEVEL: 'info', HERALD_DATA_DIR: dataDir });
  t.teardown(async () => {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const tokens = {
    header: tokenFor('log-header-user'),
    query: tokenFor('log-query-user', { topics: ['news'] }),
    cookie: tokenFor('log-cookie-user'),
    forged: tokenFor('log-forged-user', {}, 'another-secret-that-is-long-enough-42'),
  };
  const sse = (headers: Record<string, string>, query = '') => rawGet(`${server.url}/events${query}`, headers, 300);
  const r1 = await sse({ authorization: `Bearer ${tokens.header}`, 'x-request-id': 'proxy-req-42' });
  t.equal(r1.status, 200);
  t.equal(r1.headers['x-request-id'], 'proxy-req-42', "a caller's request id is kept and echoed, on a stream too");
  t.equal((await sse({}, `?token=${tokens.query}&topic=news`)).status, 200);
  t.equal((await sse({ cookie: `herald_token=${tokens.cookie}` })).status, 200);
  t.equal((await sse({}, `?%74oken=${tokens.forged}`)).status, 401, 'a percent-encoded key is still the token');
  const odd = await fetch(`${server.url}/notifications?token=${tokens.query}`, { headers: { 'x-request-id': 'has spaces and {json}' } });
  t.equal(odd.status, 200);
  t.match(odd.headers.get('x-request-id'), /^[0-9a-f-]{36}$/, 'an unusable request id is replaced by a fresh one');
  const pub = await fetch(`${server.url}/notifications`, {
    method: 'POST',
    headers: { authorization: `Bearer ${publisherKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'log-header-user', title: 'hi' }),
  });
  t.equal(pub.status, 201);
  await sleep(300);

  const out = server.output();
  for (const [where, tok] of Object.entries(tokens)) t.notOk(out.includes(tok), `the ${where} token is not in the logs`);
  t.notOk(out.includes(publisherKey), 'the publisher key is not in the logs');
  const lines = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { reqId?: string; msg?: string; req?: { url?: string } });
  const incoming = lines.filter((l) => l.msg === 'incoming request');
  t.ok(incoming.length >= 6, 'every request is logged');
  t.ok(lines.filter((l) => l.req || l.msg === 'request completed').every((l) => typeof l.reqId === 'string' && l.reqId.length > 0), 'every request line has a reqId');
  t.ok(lines.some((l) => l.reqId === 'proxy-req-42'), "the caller's id is in the log lines");
  const urls = incoming.map((l) => l.req?.url);
  t.ok(urls.includes('/events?token=[redacted]&topic=news'), `the query token is redacted: ${JSON.stringify(urls)}`);
  t.ok(urls.includes('/events?%74oken=[redacted]'), 'so is one with a percent-encoded key');
});
