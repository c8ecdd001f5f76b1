// Every error Herald answers carries a stable code from the one catalogue (src/errors.ts), in the same
// body over HTTP, on raw sockets (connection caps, node:http's refusals) and in WebSocket error
// replies: one request per code against a real server. And the README lists exactly those codes.
import { readFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import t from 'tap';
import { errorCodes, type ErrorCode } from '../../src/errors.js';
import { projectFile } from '../../src/paths.js';
import { sleep } from '../../support/util.js';
import { rawConnection, rawGet, rawRequest, type Json, type RawConnection, type RawResponse } from '../support/http.js';
import { startServer, type Server } from '../support/server.js';
import { connect } from '../support/sse.js';
import { publisherKey, tokenFor } from '../support/tokens.js';
import { waitUntil } from '../support/wait.js';
import { wsConnect } from '../support/ws.js';

/** A subtest's `t` (tap's overloads make it awkward to name directly). */
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

/** The codes this file has seen answered; the last test checks that none of the catalogue is missing. */
const seen = new Set<ErrorCode>();

/**
 * Checks one error answer: exactly `{ statusCode, code, error, message }` (plus `extra` keys), the
 * status the catalogue gives `code` (or any 4xx for `client_error`), and the reason phrase.
 */
function checkError(t: Test, label: string, status: number, body: Json, code: ErrorCode, message: string | RegExp, extra: string[] = []): void {
  seen.add(code);
  const fixed = errorCodes[code];
  if (fixed === '4xx') t.ok(status >= 400 && status < 500, `${label}: a 4xx (${status})`);
  else t.equal(status, fixed, `${label}: status ${fixed}`);
  t.same(Object.keys(body ?? {}).sort(), ['code', 'error', 'message', 'statusCode', ...extra].sort(), `${label}: the error shape`);
  t.match(body, { statusCode: status, code, error: STATUS_CODES[status], message }, `${label}: ${code}`);
}

function checkHttp(t: Test, label: string, res: RawResponse, code: ErrorCode, message: string | RegExp): void {
  t.match(res.headers['content-type'], /^application\/json/, `${label}: JSON`);
  checkError(t, label, res.status, JSON.parse(res.text), code, message);
}

/** The status and JSON body of an HTTP response read off a raw connection. */
function parseRaw(text: string): { status: number; body: Json } {
  return { status: Number(text.slice('HTTP/1.1 '.length, 'HTTP/1.1 '.length + 3)), body: JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const asUser = (user: string | undefined, claims: Record<string, unknown> = {}) => bearer(tokenFor(user, claims));
const json = { 'content-type': 'application/json' };
const asPublisher = { ...bearer(publisherKey), ...json };
/** A publish JWT of its own: the publish rate is counted per publisher. */
const asPublishToken = (sub: string) => ({ ...asUser(sub, { scope: 'publish' }), ...json });
const note = JSON.stringify({ user: 'bob', title: 'hello' });

const env = {
  HERALD_BODY_LIMIT: '1024',
  HERALD_REQUEST_TIMEOUT_MS: '1000',
  HERALD_MAX_STREAMS_PER_USER: '2',
  HERALD_MAX_TOPICS_PER_STREAM: '1',
  HERALD_RESUME_RATE_PER_USER: '1',
  HERALD_PUBLISH_RATE_LIMIT: '2',
  HERALD_PUBLISH_RATE_WINDOW_MS: '60000',
  HERALD_METRICS_TOKEN: 'metrics-token-0123456789',
  HERALD_PUSHER_APPS: 'app1:key1:pusher-secret-0123456789',
};

interface Case {
  code: ErrorCode;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  message: string | RegExp;
}

/** One request per code that a single request can provoke. */
const cases: Case[] = [
  { code: 'route_not_found', method: 'GET', path: '/nowhere?x=1', message: 'no route for GET /nowhere' },
  { code: 'url_invalid', method: 'POST', path: '/notifications/%E0%A4%A/read', headers: asUser('bob'), message: /is not a valid url component/ },
  { code: 'url_param_too_long', method: 'POST', path: `/notifications/${'1'.repeat(101)}/read`, headers: asUser('bob'), message: /exceeding the max param length/ },
  { code: 'upgrade_required', method: 'GET', path: '/ws', headers: asUser('bob'), message: /connect with Upgrade: websocket/ },
  { code: 'headers_too_large', method: 'GET', path: '/events', headers: bearer('x'.repeat(17_000)), message: 'Exceeded maximum allowed HTTP header size' },
  { code: 'client_error', method: 'GET', path: '/herald-client.js', headers: { range: 'bytes=99999999-' }, message: /./ },
  { code: 'token_missing', method: 'GET', path: '/notifications', message: /subscriber token is required/ },
  { code: 'token_invalid', method: 'GET', path: '/notifications', headers: bearer('not.a.jwt'), message: 'the token is invalid or expired' },
  { code: 'token_not_subscriber', method: 'GET', path: '/notifications', headers: asUser('bob', { scope: 'publish' }), message: /a publish token cannot subscribe/ },
  { code: 'token_user_invalid', method: 'GET', path: '/notifications', headers: asUser(undefined), message: /no valid user/ },
  { code: 'token_topics_invalid', method: 'GET', path: '/notifications', headers: asUser('bob', { topics: 'news' }), message: /topics claim must be an array/ },
  { code: 'topic_forbidden', method: 'GET', path: '/notifications?topic=secret', headers: asUser('bob'), message: /may not read topic "secret"/ },
  { code: 'publisher_credential_missing', method: 'POST', path: '/notifications', headers: json, body: note, message: /publisher key or token is required/ },
  { code: 'publisher_credential_invalid', method: 'POST', path: '/notifications', headers: { ...bearer('nope'), ...json }, body: note, message: /invalid or expired/ },
  { code: 'token_not_publisher', method: 'POST', path: '/notifications', headers: { ...asUser('bob'), ...json }, body: note, message: 'the token has no publish scope' },
  { code: 'metrics_token_required', method: 'GET', path: '/metrics', message: /metrics token is required/ },
  { code: 'origin_forbidden', method: 'GET', path: '/ws', headers: { ...asUser('bob'), origin: 'https://evil.example' }, message: /origin https:\/\/evil.example may not open a WebSocket/ },
  { code: 'content_type_unsupported', method: 'POST', path: '/notifications', headers: { ...bearer(publisherKey), 'content-type': 'text/plain' }, body: 'hi', message: /must be JSON/ },
  { code: 'charset_unsupported', method: 'POST', path: '/notifications', headers: { ...asPublisher, 'content-type': 'application/json; charset=latin1' }, body: note, message: /unsupported charset "latin1"/ },
  { code: 'body_too_large', method: 'POST', path: '/notifications', headers: asPublisher, body: JSON.stringify({ user: 'bob', title: 'x'.repeat(2000) }), message: /too large/ },
  { code: 'body_empty', method: 'POST', path: '/notifications', headers: asPublisher, body: '', message: /Body cannot be empty/ },
  { code: 'body_not_utf8', method: 'POST', path: '/notifications', headers: asPublisher, body: Buffer.from([0x7b, 0xff, 0x7d]), message: 'body is not valid UTF-8' },
  { code: 'json_invalid', method: 'POST', path: '/notifications', headers: asPublisher, body: '{', message: /Body is not valid JSON/ },
  { code: 'json_not_strict', method: 'POST', path: '/notifications', headers: asPublisher, body: '{"user":"bob","title":"t","user":"eve"}', message: 'body has a duplicate key "user"' },
  { code: 'validation_failed', method: 'POST', path: '/notifications', headers: asPublisher, body: '{"title":"t"}', message: /must name exactly one target/ },
  { code: 'notification_not_found', method: 'POST', path: '/notifications/999/read', headers: asUser('bob'), message: 'notification 999 not found' },
  { code: 'webhook_delivery_not_found', method: 'POST', path: '/webhooks/deliveries/msg_nope/retry', headers: bearer(publisherKey), message: 'no dead webhook delivery msg_nope' },
  { code: 'pusher_app_not_found', method: 'GET', path: '/apps/nope/channels', message: 'no Pusher app with id "nope" (HERALD_PUSHER_APPS)' },
  { code: 'pusher_signature_invalid', method: 'GET', path: '/apps/app1/channels?auth_key=key1', message: /the Pusher request signature is invalid: auth_key, auth_timestamp/ },
];

let s: Server;
t.before(async () => {
  s = await startServer({ env });
});
t.teardown(() => s.close());

t.test('one request per code: each answer is { statusCode, code, error, message }', async (t) => {
  for (const c of cases) {
    const res = await rawRequest(c.method, s.url + c.path, c.headers ?? {}, c.body, 2000);
    checkHttp(t, `${c.method} ${c.path.slice(0, 40)}`, res, c.code, c.message);
  }
});

t.test('codes that take more than one request', async (t) => {
  const idem = { ...asPublishToken('idem'), 'idempotency-key': 'k1' };
  t.equal((await rawRequest('POST', `${s.url}/notifications`, idem, note)).status, 201);
  const conflict = await rawRequest('POST', `${s.url}/notifications`, idem, JSON.stringify({ user: 'bob', title: 'other' }));
  checkHttp(t, 'the same Idempotency-Key, another request', conflict, 'idempotency_conflict', /already used for a different request/);

  for (let i = 0; i < 2; i++) t.equal((await rawRequest('POST', `${s.url}/notifications`, asPublishToken('hasty'), note)).status, 201);
  const hasty = await rawRequest('POST', `${s.url}/notifications`, asPublishToken('hasty'), note);
  checkHttp(t, 'a third publish in the window', hasty, 'publish_rate_limited', /publish rate limit exceeded: at most 2 per 60000 ms/);
  t.ok(hasty.headers['retry-after'], 'with Retry-After');

  const streams = [await connect(s, 'busy'), await connect(s, 'busy')];
  t.teardown(() => streams.forEach((c) => c.close()));
  checkHttp(t, 'a third stream', await rawGet(`${s.url}/events`, asUser('busy')), 'too_many_streams', 'at most 2 open streams per user');

  t.equal((await rawGet(`${s.url}/events`, { ...asUser('resumer'), 'last-event-id': '0' }, 200)).status, 200);
  const resumed = await rawGet(`${s.url}/events`, { ...asUser('resumer'), 'last-event-id': '0' });
  checkHttp(t, 'a second resume in the minute', resumed, 'resume_rate_limited', /too many resumed streams \(Last-Event-ID\): at most 1 a minute per user/);
  t.match(resumed.headers['retry-after'], /^\d+$/, 'with Retry-After');
});

t.test("node:http's refusals, answered on the socket", async (t) => {
  // A body announced and never sent whole: cut after HERALD_REQUEST_TIMEOUT_MS.
  const slow = await rawRequest('POST', `${s.url}/notifications`, { ...asPublisher, 'content-length': '100' }, '{', 5000);
  checkHttp(t, 'a request not sent whole in time', slow, 'request_timeout', 'Client Timeout');

  const garbage = await rawConnection(s.url);
  garbage.socket.write('HELLO WORLD\r\n\r\n');
  await waitUntil('an answer', () => garbage.text().includes('}'), 2000);
  const answer = parseRaw(garbage.text());
  checkError(t, 'bytes that are not HTTP', answer.status, answer.body, 'request_malformed', 'Client Error');
});

t.test('WebSocket error replies carry the same body', async (t) => {
  const c = await wsConnect(s, 'wendy', '', { topics: ['news', 'sports'] });
  t.teardown(() => c.close());
  const errorsBefore = () => c.of('error').length;
  const unreadable = async (label: string, send: () => void, code: ErrorCode, message: string | RegExp) => {
    const before = errorsBefore();
    send();
    await c.waitFor(() => errorsBefore() > before);
    const frame = c.of('error')[before];
    t.equal(frame.ref, null, `${label}: no ref could be read`);
    checkError(t, label, frame.data.statusCode, frame.data, code, message);
  };
  await unreadable('a binary message', () => c.ws.send(Buffer.from('{}')), 'message_not_text', 'messages must be text frames holding JSON');
  await unreadable('a message that is not JSON', () => c.send('nope'), 'json_invalid', 'message is not valid JSON');
  await unreadable('a duplicate key', () => c.send('{"type":"ping","type":"ping"}'), 'json_not_strict', 'message has a duplicate key "type"');

  const command = async (label: string, type: string, args: Record<string, unknown>, code: ErrorCode, message: string | RegExp) => {
    const frame = await c.command(type, args);
    t.equal(frame.event, 'error', `${label}: an error reply`);
    checkError(t, label, frame.data.statusCode, frame.data, code, message);
  };
  await command('an unknown command', 'dance', {}, 'command_unknown', /"type" must be one of "resume"/);
  await command('a wrong field type', 'read', { id: '1' }, 'validation_failed', 'read.id must be integer');
  await command('a forbidden topic', 'subscribe', { topic: 'secret' }, 'topic_forbidden', /may not read topic "secret"/);
  t.equal((await c.command('subscribe', { topic: 'news' })).event, 'reply');
  await command('a topic past the limit', 'subscribe', { topic: 'sports' }, 'too_many_topics', 'at most 1 topics per stream');
  await command('an unknown notification', 'read', { id: 999 }, 'notification_not_found', 'notification 999 not found');
  await command('a late resume', 'resume', {}, 'stream_already_started', /the stream has already started/);

  const first = await wsConnect(s, 'wsresumer');
  t.teardown(() => first.close());
  t.equal((await first.command('resume', { lastEventId: 0 })).event, 'reply');
  const second = await wsConnect(s, 'wsresumer');
  const refused = await second.command('resume', { lastEventId: 0 });
  checkError(t, 'a second resume in the minute', refused.data.statusCode, refused.data, 'resume_rate_limited', /at most 1 a minute per user/);
  t.match(await second.closed, { code: 1013 }, 'then the socket closes with 1013');
});

t.test('a store gone: 503 not ready, and 500 internal error over HTTP and WebSocket', async (t) => {
  const c = await wsConnect(s, 'last');
  t.teardown(() => c.close());
  await c.command('ping');
  await s.store.close();
  const ready = await rawGet(`${s.url}/ready`);
  const body = JSON.parse(ready.text);
  checkError(t, 'GET /ready', ready.status, body, 'not_ready', 'not ready: store unreachable', ['checks']);
  t.same(body.checks, { store: 'unreachable', bus: 'ok' }, 'with the checks');
  checkHttp(t, 'GET /notifications', await rawGet(`${s.url}/notifications`, asUser('last')), 'internal_error', 'internal error');
  const frame = await c.command('read', { id: 1 });
  checkError(t, 'a read command', frame.data.statusCode, frame.data, 'internal_error', 'internal error');
});

t.test('connection caps: 429 and 503 written on the socket', async (t) => {
  const capped = await startServer({ env: { HERALD_MAX_CONNECTIONS: '2', HERALD_MAX_CONNECTIONS_PER_IP: '1' } });
  const held: RawConnection[] = [await rawConnection(capped.url)];
  t.teardown(async () => {
    held.forEach((c) => c.socket.destroy());
    await capped.close();
  });
  checkHttp(t, 'a second connection from one address', await rawGet(`${capped.url}/health`), 'too_many_connections', /at most 1 open connections per client address/);
  held.push(await rawConnection(capped.url, '127.0.0.2'));
  checkHttp(t, 'a third connection in all', await rawGet(`${capped.url}/health`), 'connection_limit', /the server is at its connection limit \(2/);
});

t.test('a request that arrives during shutdown: 503 shutting_down', async (t) => {
  const closing = await startServer();
  const c = await rawConnection(closing.url);
  t.teardown(() => c.socket.destroy());
  // Half a request head: the connection is busy, so the stop does not close it as idle.
  c.socket.write('GET /health HTTP/1.1\r\nhost: x\r\n');
  await sleep(100); // for node:http to read it
  const closed = closing.close();
  await waitUntil('the stop to begin', () => !closing.app.server.listening, 5000);
  c.socket.write('\r\n');
  await waitUntil('an answer', () => c.text().includes('}'), 5000);
  const answer = parseRaw(c.text());
  checkError(t, 'GET /health during shutdown', answer.status, answer.body, 'shutting_down', 'Service Unavailable');
  await closed;
});

t.test('every code in the catalogue was answered above', async (t) => {
  t.same(
    Object.keys(errorCodes).filter((code) => !seen.has(code as ErrorCode)),
    [],
    'no code left unexercised',
  );
});

t.test('the README lists exactly the codes of the catalogue, with their statuses', async (t) => {
  const readme = readFileSync(projectFile('README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n### Errors\n'), readme.indexOf('\n## ', readme.indexOf('\n### Errors\n')));
  const rows = [...section.matchAll(/^\| `([a-z0-9_]+)` \| `(\d{3}|4xx)` \|/gm)].map((m) => [m[1], m[2]]);
  t.same(
    rows.map(([code]) => code).sort(),
    Object.keys(errorCodes).sort(),
    'the same codes, each once',
  );
  t.same(
    rows.filter(([code, status]) => String(errorCodes[code as ErrorCode]) !== status),
    [],
    'each with its status',
  );
});
