// Hostile input: every bad-input class against every endpoint. Each answer must be a 4xx in the one
// error shape, say nothing about internals, carry no other user's data, and leave the server working.
import { createHmac } from 'node:crypto';
import t from 'tap';
import { createSigner } from 'fast-jwt';
import { maxJsonDepth } from '../../src/http/json-body.js';
import { rawGet, rawRequest, type RawResponse } from '../support/http.js';
import { startServer, type Server } from '../support/server.js';
import { connect, parseSse } from '../support/sse.js';
import { jwtSecret, publisherKey, tokenFor } from '../support/tokens.js';

/** A subtest's `t` (tap's overloads make it awkward to name directly). */
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

/** A JWT with any header, signed HMAC-SHA256 with `secret` (or unsigned when secret is null). */
function handMadeJwt(header: Record<string, unknown>, payload: Record<string, unknown>, secret: string | null): string {
  const head = `${b64url(header)}.${b64url(payload)}`;
  return `${head}.${secret === null ? '' : createHmac('sha256', secret).update(head).digest('base64url')}`;
}

/** Subscriber credentials that must all be refused, with the status each deserves. */
function badUserCredentials(): [string, Record<string, string>, string, number][] {
  const bearer = (tok: string) => ({ authorization: `Bearer ${tok}` });
  return [
    // [name, headers, query suffix, status]
    ['no credentials', {}, '', 401],
    ['forged: signed with another secret', bearer(tokenFor('bob', {}, 'another-secret-that-is-long-enough-42')), '', 401],
    ['expired', bearer(tokenFor('bob', { exp: now() - 60 })), '', 401],
    ['not yet valid (nbf)', bearer(tokenFor('bob', { nbf: now() + 3600 })), '', 401],
    ['alg none', bearer(handMadeJwt({ alg: 'none', typ: 'JWT' }, { sub: 'bob' }, null)), '', 401],
    ['HS512 with the right secret (wrong algorithm)', bearer(createSigner({ key: jwtSecret, algorithm: 'HS512' })({ sub: 'bob' })), '', 401],
    ['RS256 header, HMAC signature (algorithm confusion)', bearer(handMadeJwt({ alg: 'RS256', typ: 'JWT' }, { sub: 'bob' }, jwtSecret)), '', 401],
    ['garbage bearer', bearer('not.a.jwt'), '', 401],
    ['Basic scheme', { authorization: `Basic ${Buffer.from('bob:pw').toString('base64')}` }, '', 401],
    ['publisher key used as a subscriber token', bearer(publisherKey), '', 401],
    ['forged token in ?token=', {}, `token=${tokenFor('bob', {}, 'another-secret-that-is-long-enough-42')}`, 401],
    ['forged token in the cookie', { cookie: `herald_token=${tokenFor('bob', { exp: now() - 60 })}` }, '', 401],
    ['publisher JWT without sub', bearer(tokenFor(undefined, { scope: 'publish' })), '', 403],
    ['sub is a number', bearer(tokenFor(undefined, { sub: 42 })), '', 403],
    ['sub is empty', bearer(tokenFor('')), '', 403],
    ['sub has a control character', bearer(tokenFor('bob\nadmin')), '', 403],
    ['sub has a lone surrogate', bearer(tokenFor('bob\ud800')), '', 403],
    ['sub is 129 characters', bearer(tokenFor('b'.repeat(129))), '', 403],
  ];
}

/** Publisher credentials that must all be refused. */
function badPublisherCredentials(): [string, Record<string, string>, string, number][] {
  const bearer = (tok: string) => ({ authorization: `Bearer ${tok}` });
  return [
    ['no credentials', {}, '', 401],
    ['wrong publisher key', bearer('wrong-publisher-key-0123456789'), '', 401],
    ['publisher JWT signed with another secret', bearer(tokenFor('svc', { scope: 'publish' }, 'another-secret-that-is-long-enough-42')), '', 401],
    ['expired publisher JWT', bearer(tokenFor('svc', { scope: 'publish', exp: now() - 60 })), '', 401],
    ['alg none publisher JWT', bearer(handMadeJwt({ alg: 'none' }, { sub: 'svc', scope: 'publish' }, null)), '', 401],
    ['subscriber token (no publish scope)', bearer(tokenFor('bob')), '', 403],
    ['publish scope only as a substring', bearer(tokenFor('bob', { scope: 'publisher republish' })), '', 403],
    ['publisher key in ?token= (publishers use the header)', {}, `token=${publisherKey}`, 401],
    ['publisher key in the cookie', { cookie: `herald_token=${publisherKey}` }, '', 401],
  ];
}

interface Case {
  name: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Expected status; a list when either is right. */
  status: number | number[];
}

const json = { 'content-type': 'application/json' };
const deepArrays = (n: number) => '['.repeat(n) + ']'.repeat(n);
const deepObjects = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);

function publishCases(): Case[] {
  const pub = { authorization: `Bearer ${publisherKey}`, ...json };
  const post = (name: string, body: string | Buffer, status: number | number[] = 400, headers: Record<string, string> = pub): Case => ({
    name: `POST /notifications: ${name}`,
    method: 'POST',
    path: '/notifications',
    headers,
    body,
    status,
  });
  const ok = { user: 'bob', title: 't' };
  const with_ = (extra: Record<string, unknown>) => JSON.stringify({ ...ok, ...extra });
  return [
    post('malformed JSON', '{"user":"bob","title":'),
    post('trailing garbage', '{"user":"bob","title":"t"} x'),
    post('empty body', ''),
    post('JSON null', 'null'),
    post('a JSON string', '"hello"'),
    post('a JSON array', '[]'),
    post('5,000 nested arrays in data', `{"user":"bob","title":"t","data":{"x":${deepArrays(5000)}}}`),
    post('5,000 nested objects in data', `{"user":"bob","title":"t","data":${deepObjects(5000)}}`),
    post('20,000 nested arrays as the body', deepArrays(20_000)),
    post(`data nested ${maxJsonDepth} levels (one too deep with the body)`, `{"user":"bob","title":"t","data":${deepObjects(maxJsonDepth)}}`),
    post('title is a number', with_({ title: 123 })),
    post('title is null', with_({ title: null })),
    post('title is empty', with_({ title: '' })),
    post('users is a string', JSON.stringify({ users: 'bob', title: 't' })),
    post('users is empty', JSON.stringify({ users: [], title: 't' })),
    post('user is a number', JSON.stringify({ user: 7, title: 't' })),
    post('user is an object', JSON.stringify({ user: { $gt: '' }, title: 't' })),
    post('data is an array', with_({ data: [1] })),
    post('data is a string', with_({ data: 'x' })),
    post('broadcast is false', JSON.stringify({ broadcast: false, title: 't' })),
    post('broadcast is "true"', JSON.stringify({ broadcast: 'true', title: 't' })),
    post('type is an object', with_({ type: {} })),
    post('unknown field', with_({ colour: 'red' })),
    post('two targets', with_({ topic: 'news' })),
    post('no target', JSON.stringify({ title: 't' })),
    post('title of 501 characters', with_({ title: 'x'.repeat(501) })),
    post('body of 20,001 characters', with_({ body: 'x'.repeat(20_001) })),
    post('user id of 129 characters', JSON.stringify({ user: 'u'.repeat(129), title: 't' })),
    post('1,001 users', JSON.stringify({ users: Array.from({ length: 1001 }, (_, i) => `u${i}`), title: 't' })),
    post('topic of 129 characters', JSON.stringify({ topic: 't'.repeat(129), title: 't' })),
    post('topic with a line break', JSON.stringify({ topic: 'news\nid: 5', title: 't' })),
    post('user id with a line break', JSON.stringify({ user: 'bob\r\nid: 5', title: 't' })),
    post('user id with NUL', JSON.stringify({ user: 'bob\u0000', title: 't' })),
    post('body over the size limit', with_({ body: 'x'.repeat(70_000) }), 413),
    post('lone high surrogate in title', '{"user":"bob","title":"a\\ud800b"}'),
    post('lone low surrogate in body', '{"user":"bob","title":"t","body":"\\udc00"}'),
    post('lone surrogate in a data key', '{"user":"bob","title":"t","data":{"\\ud83d":1}}'),
    post('lone surrogate deep in data', '{"user":"bob","title":"t","data":{"a":[{"b":"x\\udfff"}]}}'),
    post('lone surrogate in a user id', '{"user":"bob\\ud800","title":"t"}'),
    post('invalid UTF-8 bytes', Buffer.concat([Buffer.from('{"user":"bob","title":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')])),
    post('overlong UTF-8 encoding of "/"', Buffer.concat([Buffer.from('{"user":"bob","title":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')])),
    post('__proto__ pollution', '{"user":"bob","title":"t","data":{"__proto__":{"admin":true}}}'),
    post('constructor.prototype pollution', '{"user":"bob","title":"t","data":{"constructor":{"prototype":{"admin":true}}}}'),
    post('__proto__ as a top-level field', '{"user":"bob","title":"t","__proto__":{"admin":true}}'),
    post('duplicate key (a reviewer and Herald could read different values)', '{"user":"bob","title":"t","user":"alice"}'),
    post('duplicate key in data', '{"user":"bob","title":"t","data":{"a":1,"a":2}}'),
    post('integer beyond 2^53', '{"user":"bob","title":"t","data":{"id":9007199254740993}}'),
    post('number overflowing to Infinity', '{"user":"bob","title":"t","data":{"n":1e999}}'),
    post('number underflowing to 0', '{"user":"bob","title":"t","data":{"n":-1e-999}}'),
    post('text/plain', JSON.stringify(ok), 415, { authorization: `Bearer ${publisherKey}`, 'content-type': 'text/plain' }),
    post('form-encoded', 'user=bob&title=t', 415, { authorization: `Bearer ${publisherKey}`, 'content-type': 'application/x-www-form-urlencoded' }),
    post('JSON declared as latin1', JSON.stringify(ok), 415, { authorization: `Bearer ${publisherKey}`, 'content-type': 'application/json; charset=latin1' }),
    post('a body with no content type', JSON.stringify(ok), 415, { authorization: `Bearer ${publisherKey}` }),
    post('Idempotency-Key of 256 characters', JSON.stringify(ok), 400, { ...pub, 'idempotency-key': 'k'.repeat(256) }),
    post('empty Idempotency-Key', JSON.stringify(ok), 400, { ...pub, 'idempotency-key': '' }),
    ...badPublisherCredentials().map(([name, headers, query, status]) => ({
      name: `POST /notifications: ${name}`,
      method: 'POST',
      path: `/notifications${query ? `?${query}` : ''}`,
      headers: { ...headers, ...json },
      body: JSON.stringify(ok),
      status,
    })),
  ];
}

/** The subscriber endpoints, each with a valid request shape so only the hostile part differs. */
const subscriberEndpoints: { method: string; path: string }[] = [
  { method: 'GET', path: '/events' },
  { method: 'GET', path: '/ws' },
  { method: 'GET', path: '/notifications' },
  { method: 'GET', path: '/notifications/unread-count' },
  { method: 'POST', path: '/notifications/1/read' },
  { method: 'POST', path: '/notifications/read-all' },
  { method: 'DELETE', path: '/notifications/1' },
];

function subscriberCases(): Case[] {
  const bob = { authorization: `Bearer ${tokenFor('bob')}` };
  const cases: Case[] = [];
  for (const e of subscriberEndpoints) {
    for (const [name, headers, query, status] of badUserCredentials()) {
      cases.push({ name: `${e.method} ${e.path}: ${name}`, method: e.method, path: query ? `${e.path}?${query}` : e.path, headers, status });
    }
    const q = (query: string, status: number | number[] = 400): Case => ({
      name: `${e.method} ${e.path}?${query.slice(0, 60)}`,
      method: e.method,
      path: `${e.path}?${query}`,
      headers: bob,
      status,
    });
    if (e.method === 'GET') {
      cases.push(
        q('topic=bad%20topic'),
        q('topic=news%0d%0aid:%205'),
        q(`topic=${'t'.repeat(129)}`),
        q(Array.from({ length: 51 }, (_, i) => `topic=t${i}`).join('&')),
        q('topic=a&topic=a'),
        q('unknown=1'),
        q('token=' + 'x'.repeat(100) + '&token=y'),
      );
    }
    if (e.method !== 'GET') {
      // Routes without a body still parse one that is sent: the same strict parser refuses it.
      const withBody = (name: string, body: string, headers: Record<string, string>, status: number): Case => ({
        name: `${e.method} ${e.path}: ${name}`,
        method: e.method,
        path: e.path,
        headers: { ...bob, ...headers },
        body,
        status,
      });
      cases.push(
        withBody('malformed JSON body', '{', json, 400),
        withBody('5,000 nested arrays as the body', deepArrays(5000), json, 400),
        withBody('text/plain body', 'hello', { 'content-type': 'text/plain' }, 415),
      );
    }
  }
  for (const bad of ['-1', 'abc', '1.5', '1e3', '0x10', '01', '99999999999999999999', '%20', '1%0d%0aid:%205', '%00']) {
    for (const e of subscriberEndpoints.filter((x) => x.path.includes('/1'))) {
      cases.push({ name: `${e.method} ${e.path} with id "${bad}"`, method: e.method, path: e.path.replace('/1', `/${bad}`), headers: bob, status: 400 });
    }
  }
  // Last-Event-ID: the header (EventSource reconnects) and the query (first connect).
  for (const bad of ['-1', 'abc', '1.5', '1e3', '0x10', '+1', '99999999999999999999', 'NaN', 'Infinity']) {
    cases.push({ name: `GET /events with Last-Event-ID "${bad}"`, method: 'GET', path: '/events', headers: { ...bob, 'last-event-id': bad }, status: 400 });
    cases.push({ name: `GET /events?lastEventId=${bad}`, method: 'GET', path: `/events?lastEventId=${encodeURIComponent(bad)}`, headers: bob, status: 400 });
  }
  cases.push({ name: 'GET /events?lastEventId with CR/LF', method: 'GET', path: '/events?lastEventId=5%0d%0aid:%206', headers: bob, status: 400 });
  for (const bad of ['limit=0', 'limit=201', 'limit=-1', 'limit=abc', 'limit=1.5', 'unread=maybe', 'before=-1', 'before=abc', 'before=1e3']) {
    cases.push({ name: `GET /notifications?${bad}`, method: 'GET', path: `/notifications?${bad}`, headers: bob, status: 400 });
  }
  // Headers past Node's 16 KiB limit are refused by the HTTP layer, still in the JSON shape. Just past
  // it: a much larger request is still being sent when the server closes, and the client sees a reset.
  cases.push({ name: 'GET /events with a 17 kB token', method: 'GET', path: '/events', headers: { authorization: `Bearer ${'x'.repeat(17_000)}` }, status: 431 });
  cases.push({ name: 'GET /notifications with a 17 kB query', method: 'GET', path: `/notifications?topic=${'t'.repeat(17_000)}`, headers: bob, status: 431 });
  cases.push({ name: 'an unknown route', method: 'GET', path: '/admin?token=x', headers: bob, status: 404 });
  cases.push({ name: 'GET /ws without an Upgrade header', method: 'GET', path: '/ws', headers: bob, status: 426 });
  cases.push({ name: 'POST /health', method: 'POST', path: '/health', headers: json, body: '{}', status: 404 });
  cases.push({ name: 'DELETE /ready', method: 'DELETE', path: '/ready', headers: bob, status: 404 });
  cases.push({ name: 'POST /metrics (no such route) with 5,000 nested arrays', method: 'POST', path: '/metrics', headers: json, body: deepArrays(5000), status: [400, 404] });
  return cases;
}

/** Marks of a leak or an internal error in a message: stack frames, source files, SQL, paths. */
const internals = /\bat \S+ \(|\.[jt]s:\d+|node_modules|SQLITE|sqlite|Error:|TypeError|RangeError|\/tmp\/|undefined|\[object/;

function checkErrorShape(t: Test, c: Case, res: RawResponse, secret: string): void {
  const expected = Array.isArray(c.status) ? c.status : [c.status];
  t.ok(expected.includes(res.status), `${c.name}: status ${res.status} in ${expected.join('|')}${res.status >= 500 ? ` (${res.text.slice(0, 200)})` : ''}`);
  t.match(res.headers['content-type'], /^application\/json/, `${c.name}: JSON`);
  let body: { statusCode?: unknown; code?: unknown; error?: unknown; message?: unknown } = {};
  try {
    body = JSON.parse(res.text) as typeof body;
  } catch {
    t.fail(`${c.name}: body is not JSON: ${res.text.slice(0, 200)}`);
    return;
  }
  t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'], `${c.name}: the error shape`);
  t.equal(body.statusCode, res.status, `${c.name}: statusCode matches`);
  if (res.status === 415) t.match(body.message, /application\/json/, `${c.name}: says what to send`);
  t.type(body.code, 'string');
  t.type(body.error, 'string');
  t.type(body.message, 'string');
  t.notMatch(String(body.message), internals, `${c.name}: no internals in "${String(body.message).slice(0, 120)}"`);
  t.notOk(res.text.includes(secret), `${c.name}: no other user's data`);
  t.notOk(res.text.includes(publisherKey) || res.text.includes(jwtSecret), `${c.name}: no secrets`);
}

async function stillWorks(t: Test, s: Server, label: string): Promise<void> {
  const c = await connect(s, 'carol');
  try {
    const r = await s.publish({ user: 'carol', title: `after ${label}` });
    t.equal(r.status, 201, `publishing works after ${label}`);
    await c.waitFor((e) => e.some((x) => x.data.title === `after ${label}`), 10_000);
    t.pass(`delivery works after ${label}`);
  } finally {
    c.close();
  }
  const h = await s.request('GET', '/health', null);
  t.equal(h.status, 200, `health after ${label}`);
}

/** Every case against one server that holds a notification private to alice. */
async function runTable(t: Test, cases: Case[]): Promise<void> {
  const s = await startServer();
  t.teardown(() => s.close());
  const secret = `alice-private-${Date.now()}`;
  const mine = await s.publish({ user: 'alice', title: secret, body: secret, data: { secret } });
  t.equal(mine.body.id, 1, "notification 1, the id the cases aim at, is alice's");
  for (const c of cases) checkErrorShape(t, c, await rawRequest(c.method, s.url + c.path, c.headers ?? {}, c.body, 2000), secret);
  await stillWorks(t, s, `${cases.length} hostile requests`);
  t.equal((await s.request('GET', '/notifications', 'alice')).body.items[0].title, secret, "alice's notification is intact");
}

t.test('publish: every bad body, type, size, encoding, content type and credential is a clear 4xx', (t) => runTable(t, publishCases()));

t.test('subscriber endpoints: bad credentials, ids, Last-Event-ID, queries and bodies are clear 4xx', (t) => runTable(t, subscriberCases()));

t.test('with HERALD_JWT_AUDIENCE, a token for another audience or none is refused', async (t) => {
  const s = await startServer({ env: { HERALD_JWT_AUDIENCE: 'herald-test' } });
  t.teardown(() => s.close());
  const secret = `alice-private-${Date.now()}`;
  await s.publish({ user: 'alice', title: secret });
  const tokens: [string, string, number][] = [
    ['no aud claim', tokenFor('alice'), 401],
    ['another audience', tokenFor('alice', { aud: 'other-app' }), 401],
    ['an audience list without ours', tokenFor('alice', { aud: ['a', 'b'] }), 401],
    ['a publisher JWT for another audience', tokenFor('svc', { scope: 'publish', aud: 'other-app' }), 401],
  ];
  for (const e of [...subscriberEndpoints, { method: 'POST', path: '/notifications' }]) {
    for (const [name, tok, status] of tokens) {
      const c: Case = { name: `${e.method} ${e.path}: ${name}`, method: e.method, path: e.path, headers: { authorization: `Bearer ${tok}` }, status };
      if (e.path === '/notifications' && e.method === 'POST') {
        c.headers = { ...c.headers, ...json };
        c.body = JSON.stringify({ user: 'alice', title: 'x' });
      }
      checkErrorShape(t, c, await rawRequest(c.method, s.url + c.path, c.headers!, c.body, 2000), secret);
    }
  }
  const good = tokenFor('alice', { aud: 'herald-test' });
  const res = await fetch(`${s.url}/notifications`, { headers: { authorization: `Bearer ${good}` } });
  t.equal(res.status, 200, 'the right audience is accepted');
  t.equal(((await res.json()) as { items: { title: string }[] }).items[0]!.title, secret);
});

t.test("a token for another user never reaches alice's notifications", async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const secret = `alice-private-${Date.now()}`;
  const n = await s.publish({ user: 'alice', title: secret, data: { secret } });
  const bob = { authorization: `Bearer ${tokenFor('bob')}` };
  const probes: [string, string, number][] = [
    ['GET', '/notifications', 200],
    ['GET', '/notifications?unread=true', 200],
    ['GET', '/notifications/unread-count', 200],
    ['POST', `/notifications/${n.body.id}/read`, 404],
    ['DELETE', `/notifications/${n.body.id}`, 404],
  ];
  for (const [method, path, status] of probes) {
    const res = await rawRequest(method, s.url + path, bob, undefined, 2000);
    t.equal(res.status, status, `${method} ${path} as bob`);
    t.notOk(res.text.includes(secret), `${method} ${path} as bob shows nothing of alice's`);
  }
  t.same((await s.request('GET', '/notifications/unread-count', 'bob')).body, { count: 0 });
  // Replay from the beginning as bob: the stream must not carry alice's notification.
  const stream = await rawGet(`${s.url}/events`, { ...bob, 'last-event-id': '0' }, 500);
  t.equal(stream.status, 200);
  t.notOk(stream.text.includes(secret), "bob's catch-up carries nothing of alice's");
  // Bob's attempts changed nothing for alice.
  const alice = await s.request('GET', '/notifications', 'alice');
  t.match(alice.body.items[0], { id: n.body.id, title: secret, read: false });
});

/** Strings that must come back exactly as sent, through the store, history and the stream. */
const unicodeCases: [string, string][] = [
  ['NUL', 'a\u0000b'],
  ['C0 and DEL controls', '\u0001\u0007\u001b[31m\u007f'],
  ['right-to-left override', 'abc\u202edcba\u202c'],
  ['Arabic and Hebrew', 'مرحبا שלום'],
  ['emoji, ZWJ sequence and flags', '👩‍👩‍👧‍👦 🇫🇷 😀'],
  ['astral plane', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠜎'],
  ['combining marks', 'Z̷̢̛a̶l̵g̸o'],
  ['BOM and zero-width', '\ufeff\u200b\u200d'],
  ['U+2028 and U+2029', 'line\u2028para\u2029end'],
  ['noncharacters', '\uffff\ufffe'],
  ['replacement character', '\ufffd'],
  ['CR, LF and CRLF', 'a\rb\nc\r\nd'],
  ['forged SSE fields', 'x\n\nid: 999999\nevent: reload\ndata: {"forged":true}\n\nretry: 1\n'],
  ['forged SSE fields with CR', 'x\r\rid: 999999\revent: reload\r'],
];

t.test('unicode edge cases are stored and delivered intact, and never forge an SSE event or id', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const alice = await connect(s, 'alice');
  t.teardown(() => alice.close());
  const raw = rawGet(`${s.url}/events`, { authorization: `Bearer ${tokenFor('alice')}` }, 3000);
  await new Promise((r) => setTimeout(r, 200));
  const sent: { id: number; text: string }[] = [];
  for (const [name, text] of unicodeCases) {
    const res = await s.publish({ user: 'alice', title: text, body: text, type: text.slice(0, 64), data: { [text]: text, list: [text] } });
    t.equal(res.status, 201, `${name}: accepted`);
    t.equal(res.body.title, text, `${name}: answered intact`);
    sent.push({ id: res.body.id, text });
  }
  await alice.waitFor((e) => e.length >= sent.length, 10_000);
  t.same(
    alice.events.map((e) => e.type),
    sent.map(() => 'notification'),
    'exactly one notification event per publish: no forged reload or extra event',
  );
  sent.forEach(({ id, text }, i) => {
    const ev = alice.events[i]!;
    t.equal(ev.id, String(id), `${unicodeCases[i]![0]}: the SSE id is the notification id`);
    t.same(ev.data, { id, title: text, body: text, type: text.slice(0, 64), data: { [text]: text, list: [text] }, topic: null, broadcast: false, createdAt: ev.data.createdAt, url: null, icon: null, actor: null, actions: null, critical: false });
  });
  const frames = parseSse((await raw).text);
  t.same(
    frames.map((f) => [f.event, f.id]),
    [['unread', undefined], ...sent.map(({ id }) => ['notification', String(id)])],
    'the raw stream has exactly these events and ids',
  );
  const history = await s.request('GET', '/notifications?limit=200', 'alice');
  const byId = new Map<number, { title: string; body: string; data: Record<string, unknown> }>(
    history.body.items.map((n: { id: number; title: string; body: string; data: Record<string, unknown> }) => [n.id, n]),
  );
  sent.forEach(({ id, text }, i) => {
    // Test names come from the table: raw U+2028 in a name would break tap's own output.
    t.same([byId.get(id)?.title, byId.get(id)?.body, byId.get(id)?.data], [text, text, { [text]: text, list: [text] }], `${unicodeCases[i]![0]}: history intact`);
  });
  // A user id may hold any printable Unicode; it reaches exactly that user.
  const odd = '用户-👩‍💻-\u202eRTL';
  const oddClient = await connect(s, odd);
  t.teardown(() => oddClient.close());
  const r = await s.publish({ user: odd, title: 'for the odd id' });
  t.equal(r.status, 201);
  await oddClient.waitFor((e) => e.length === 1);
  t.equal(oddClient.events[0]!.id, String(r.body.id));
});

