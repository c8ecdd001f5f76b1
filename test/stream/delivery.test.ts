import t from 'tap';
import { sleep } from '../../support/util.js';
import { rawGet } from '../support/http.js';
import { startServer } from '../support/server.js';
import { connect, parseSse } from '../support/sse.js';
import { tokenFor } from '../support/tokens.js';

t.test('a published notification reaches its user, and only its user', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const alice = await connect(s, 'alice');
  const bob = await connect(s, 'bob');
  t.teardown(() => (alice.close(), bob.close()));

  const res = await s.publish({ user: 'alice', title: 'Hello', body: 'hi', data: { k: [1, 2] }, type: 'greeting' });
  t.equal(res.status, 201);
  t.type(res.body.id, 'number');
  t.same(res.body.users, ['alice']);
  await alice.waitFor((e) => e.length >= 1);
  const ev = alice.events[0]!;
  t.equal(ev.type, 'notification');
  t.equal(ev.id, String(res.body.id), 'SSE id is the notification id');
  t.match(ev.data, { id: res.body.id, title: 'Hello', body: 'hi', data: { k: [1, 2] }, type: 'greeting', broadcast: false });
  t.notOk('users' in ev.data, 'subscribers never see the recipient list');
  await sleep(100);
  t.equal(bob.events.length, 0, 'bob saw nothing');
});

t.test('users list, topics and broadcast', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const a = await connect(s, 'a', '?topic=news&topic=sport', {}, { topics: ['news', 'sport'] });
  const b = await connect(s, 'b', '?topic=news', {}, { topics: ['news'] });
  const c = await connect(s, 'c');
  t.teardown(() => [a, b, c].forEach((x) => x.close()));

  const multi = await s.publish({ users: ['a', 'c'], title: 'multi' });
  const sport = await s.publish({ topic: 'sport', title: 'goal' });
  const news = await s.publish({ topic: 'news', title: 'headline' });
  const all = await s.publish({ broadcast: true, title: 'everyone' });
  for (const r of [multi, sport, news, all]) t.equal(r.status, 201);

  await a.waitFor((e) => e.length >= 4);
  await b.waitFor((e) => e.length >= 2);
  await c.waitFor((e) => e.length >= 2);
  await sleep(100);
  t.same(a.ids(), [multi.body.id, sport.body.id, news.body.id, all.body.id]);
  t.same(b.ids(), [news.body.id, all.body.id]);
  t.same(c.ids(), [multi.body.id, all.body.id]);
});

t.test('stream framing and headers', async (t) => {
  const s = await startServer({ env: { HERALD_HEARTBEAT_MS: '100', HERALD_RETRY_MS: '1500' } });
  t.teardown(() => s.close());
  const pending = rawGet(`${s.url}/events`, { authorization: `Bearer ${tokenFor('zed')}` }, 400);
  await sleep(100);
  const pub = await s.publish({ user: 'zed', title: 'line1\nid: 999\n\nevent: forged', data: { x: '\r\n' } });
  const res = await pending;
  t.equal(res.status, 200);
  t.match(res.headers['content-type'], /^text\/event-stream/);
  t.equal(res.headers['cache-control'], 'no-cache, no-transform');
  t.equal(res.headers['x-accel-buffering'], 'no');
  t.match(res.text, /^retry: 1500\n\n/, 'retry first');
  t.match(res.text, /\n: heartbeat\n\n/, 'heartbeat comments while idle');
  const [unread, ...events] = parseSse(res.text);
  t.same(unread, { event: 'unread', data: '{"count":0}' }, 'the count first, once the stream is live');
  t.equal(events.length, 1, 'a payload with line breaks is still one event');
  t.equal(events[0]!.id, String(pub.body.id));
  t.equal(JSON.parse(events[0]!.data).title, 'line1\nid: 999\n\nevent: forged');
});

t.test('CORS: configured origins only, also on the hijacked stream', async (t) => {
  const s = await startServer({ env: { HERALD_CORS_ORIGINS: 'https://app.example', NODE_ENV: 'production', HERALD_DEMO: 'false' } });
  t.teardown(() => s.close());
  const preflight = (origin: string) =>
    fetch(`${s.url}/notifications`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
    });
  t.equal((await preflight('https://app.example')).headers.get('access-control-allow-origin'), 'https://app.example');
  t.equal((await preflight('https://evil.example')).headers.get('access-control-allow-origin'), null);
  const stream = await rawGet(`${s.url}/events`, { authorization: `Bearer ${tokenFor('a')}`, origin: 'https://app.example' }, 200);
  t.equal(stream.headers['access-control-allow-origin'], 'https://app.example');
  t.equal(stream.headers['access-control-allow-credentials'], 'true', 'cookies may be sent cross-origin by listed origins');
});
