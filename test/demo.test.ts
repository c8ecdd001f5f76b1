import t from 'tap';
import { loadConfig } from '../src/config.js';
import { jwtSecret, rawGet, startServer, type Json } from './helpers.js';

const post = async (url: string, body: unknown, headers: Record<string, string> = {}) => {
  const res = await fetch(url, {
    method: 'POST',
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Json };
};

t.test('demo endpoints do not exist when demo mode is off', async (t) => {
  // The helpers configure a secret, which leaves demo mode off.
  const s = await startServer();
  t.teardown(() => s.close());
  t.equal(s.config.demo, false);
  for (const body of [undefined, {}, { user: 'mallory' }]) {
    const res = await post(`${s.url}/demo/session`, body);
    t.equal(res.status, 404, 'POST /demo/session is a 404');
    t.same(res.body, { statusCode: 404, error: 'Not Found', message: 'no route for POST /demo/session' });
  }
});

t.test('production without a secret has no demo either, and a secret refuses demo mode', async (t) => {
  const s = await startServer({ env: { HERALD_JWT_SECRET: '', NODE_ENV: 'production' } });
  t.teardown(() => s.close());
  t.equal(s.config.demo, false);
  t.equal((await post(`${s.url}/demo/session`, {})).status, 404);
  t.throws(() => loadConfig({ HERALD_DEMO: 'true', HERALD_JWT_SECRET: jwtSecret }), { message: /HERALD_DEMO cannot be on/ });
});

t.test('the page and the client module are served, with a strict content policy', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const page = await fetch(`${s.url}/`);
  t.equal(page.status, 200);
  t.match(page.headers.get('content-type'), /^text\/html/);
  t.match(page.headers.get('content-security-policy'), /default-src 'self'/);
  t.match(await page.text(), /<script type="module" src="app\.js"><\/script>/);
  const client = await fetch(`${s.url}/herald-client.js`);
  t.equal(client.status, 200);
  t.match(client.headers.get('content-type'), /javascript/);
  t.match(await client.text(), /export class HeraldClient/);
  const missing = await fetch(`${s.url}/nothing-here.js`);
  t.equal(missing.status, 404, 'unknown paths keep the JSON 404');
  t.equal(((await missing.json()) as Json).statusCode, 404);
});

t.test('demo mode: a session gives a working subscriber token and a publish-only token', async (t) => {
  const s = await startServer({ env: { HERALD_JWT_SECRET: '' } });
  t.teardown(() => s.close());
  t.equal(s.config.demo, true, 'on by default without a configured secret');

  const bare = await post(`${s.url}/demo/session`, undefined);
  t.equal(bare.status, 200, 'no body at all is fine');
  t.equal(bare.body.user, 'alice', 'the default demo user');

  const res = await post(`${s.url}/demo/session`, { user: 'dora' });
  t.equal(res.status, 200);
  t.equal(res.body.user, 'dora');
  const asDora = { authorization: `Bearer ${res.body.token}` };
  const asPublisher = { authorization: `Bearer ${res.body.publishToken}` };

  const pub = await post(`${s.url}/notifications`, { user: 'dora', title: 'from the demo form' }, asPublisher);
  t.equal(pub.status, 201, 'the publish token publishes');
  t.equal((await post(`${s.url}/notifications`, { user: 'dora', title: 'x' }, asDora)).status, 403, 'the user token cannot');
  const history = await fetch(`${s.url}/notifications`, { headers: asDora });
  t.same(((await history.json()) as Json).items.map((n: Json) => n.id), [pub.body.id], 'the user token reads dora’s inbox');

  for (const bad of [{ user: '' }, { user: 'x'.repeat(129) }, { user: 'a\nb' }, { who: 'dora' }, { user: 7 }]) {
    const r = await post(`${s.url}/demo/session`, bad);
    t.equal(r.status, 400, `rejects ${JSON.stringify(bad)}`);
    t.equal(r.body.statusCode, 400);
  }
});

t.test('demo mode: session tokens allow the demo topic and the topics the page names', async (t) => {
  const s = await startServer({ env: { HERALD_JWT_SECRET: '' } });
  t.teardown(() => s.close());
  const stream = async (token: string, query: string) => (await rawGet(`${s.url}/events${query}`, { authorization: `Bearer ${token}` }, 300)).status;

  const plain = await post(`${s.url}/demo/session`, {});
  t.equal(await stream(plain.body.token, '?topic=deploys'), 200, 'the demo page’s default topic');
  t.equal(await stream(plain.body.token, '?topic=news'), 403, 'no other');

  const named = await post(`${s.url}/demo/session`, { user: 'dora', topics: ['news', 'org:42:builds'] });
  t.equal(named.status, 200);
  t.equal(await stream(named.body.token, '?topic=news&topic=org:42:builds&topic=deploys'), 200, 'the topics it asked for, and the default');
  t.equal(await stream(named.body.token, '?topic=sport'), 403, 'and nothing else');
  t.equal(await stream(named.body.publishToken, ''), 403, 'the publish token cannot subscribe');

  for (const topics of ['news', ['a b'], ['org:*'], ['x', 'x'], Array.from({ length: 51 }, (_, i) => `t${i}`)]) {
    const r = await post(`${s.url}/demo/session`, { topics });
    t.equal(r.status, 400, `rejects topics ${JSON.stringify(topics).slice(0, 40)}`);
  }
});
