// Abuse limits: each is configurable and, when hit, answers a clear JSON error instead of doing
// unbounded work. The other two are tested with the core: the body size (413) in input.test.ts, the
// catch-up batch (a reload event) in test/stream/catchup.test.ts.
import t from 'tap';
import { rawGet } from '../support/http.js';
import { startServer, type Server } from '../support/server.js';
import { connect } from '../support/sse.js';
import { publisherKey, tokenFor } from '../support/tokens.js';

const errorShape = (statusCode: number, error: string, message: RegExp) => ({ statusCode, error, message });

async function count(s: Server, user: string): Promise<number> {
  return (await s.request('GET', '/notifications/unread-count', user)).body.count;
}

t.test('publish rate limit: per authenticated publisher, after auth, 429 with Retry-After', async (t) => {
  const s = await startServer({ env: { HERALD_PUBLISH_RATE_LIMIT: '3', HERALD_PUBLISH_RATE_WINDOW_MS: '60000' } });
  t.teardown(() => s.close());
  for (let i = 0; i < 3; i++) t.equal((await s.publish({ user: 'r', title: `ok ${i}` })).status, 201);
  const res = await fetch(`${s.url}/notifications`, {
    method: 'POST',
    headers: { authorization: `Bearer ${publisherKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'r', title: 'one too many' }),
  });
  t.equal(res.status, 429);
  t.match(await res.json(), errorShape(429, 'Too Many Requests', /publish rate limit exceeded: at most 3 per 60000 ms for this publisher; retry in/));
  t.ok(Number(res.headers.get('retry-after')) > 0, 'Retry-After says when to retry');
  t.equal(await count(s, 'r'), 3, 'the refused publish was not stored');

  const other = await s.publish({ user: 'r', title: 'another publisher' }, { authorization: `Bearer ${tokenFor('billing', { scope: 'publish' })}` });
  t.equal(other.status, 201, 'another publisher has its own allowance');
  // Were the limiter before auth, these would share one (unauthenticated) bucket and the 4th would be 429.
  const forged = [];
  for (let i = 0; i < 5; i++) forged.push((await s.publish({ user: 'r', title: 'forged' }, { authorization: 'Bearer not-a-key' })).status);
  t.same(forged, [401, 401, 401, 401, 401], 'bad credentials are refused by auth first, always 401, never counted');
  t.equal((await s.request('GET', '/notifications', 'r')).status, 200, 'subscriber routes are not rate limited');
});

t.test('unset, the publish rate is not limited', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  t.equal(s.config.publish.rateLimit, 0);
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => s.publish({ user: 'n', title: `${i}` })));
  t.same(new Set(results.map((r) => r.status)), new Set([201]));
});

t.test('open streams per user: 429 beyond HERALD_MAX_STREAMS_PER_USER', async (t) => {
  const s = await startServer({ env: { HERALD_MAX_STREAMS_PER_USER: '2' } });
  t.teardown(() => s.close());
  const a = await connect(s, 'many');
  const b = await connect(s, 'many');
  t.teardown(() => (a.close(), b.close()));
  const third = await rawGet(`${s.url}/events`, { authorization: `Bearer ${tokenFor('many')}` }, 1000);
  t.equal(third.status, 429);
  t.match(JSON.parse(third.text), errorShape(429, 'Too Many Requests', /at most 2 open streams per user/));
  const someoneElse = await connect(s, 'few');
  t.teardown(() => someoneElse.close());
  t.pass('the limit is per user');
  a.close();
  const deadline = Date.now() + 5000;
  while (s.app.hub.streamsOf('many') > 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const again = await connect(s, 'many');
  t.teardown(() => again.close());
  t.pass('a closed stream frees its slot');
});

t.test('topics per stream and per query: 400 beyond HERALD_MAX_TOPICS_PER_STREAM', async (t) => {
  const s = await startServer({ env: { HERALD_MAX_TOPICS_PER_STREAM: '3' } });
  t.teardown(() => s.close());
  const four = '?topic=a&topic=b&topic=c&topic=d';
  const stream = await rawGet(`${s.url}/events${four}`, { authorization: `Bearer ${tokenFor('t')}` }, 1000);
  t.equal(stream.status, 400);
  t.match(JSON.parse(stream.text), errorShape(400, 'Bad Request', /topic must NOT have more than 3 items/));
  const history = await s.request('GET', `/notifications${four}`, 't');
  t.match(history, { status: 400, body: errorShape(400, 'Bad Request', /topic must NOT have more than 3 items/) });
  const three = await rawGet(`${s.url}/events?topic=a&topic=b&topic=c`, { authorization: `Bearer ${tokenFor('t', { topics: ['a', 'b', 'c'] })}` }, 300);
  t.equal(three.status, 200, 'at the limit is fine');
});
