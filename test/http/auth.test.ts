import t from 'tap';
import { rawGet } from '../support/http.js';
import { startServer } from '../support/server.js';
import { jwtSecret, publisherKey, tokenFor } from '../support/tokens.js';

const expired = () => tokenFor('alice', { exp: Math.floor(Date.now() / 1000) - 60 });
const forged = () => tokenFor('alice', {}, 'another-secret-that-is-long-enough-000000');
/** A token with "alg": "none" and no signature. */
const algNone = () =>
  [Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })), Buffer.from(JSON.stringify({ sub: 'alice' }))]
    .map((b) => b.toString('base64url'))
    .join('.') + '.';

t.test('subscriber endpoints refuse missing, forged, expired and alg-none tokens', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  await s.publish({ user: 'alice', title: 'secret stuff' });
  const cases: [string, Record<string, string>, number][] = [
    ['no token', {}, 401],
    ['garbage', { authorization: 'Bearer not-a-jwt' }, 401],
    ['forged', { authorization: `Bearer ${forged()}` }, 401],
    ['expired', { authorization: `Bearer ${expired()}` }, 401],
    ['alg none', { authorization: `Bearer ${algNone()}` }, 401],
    ['no sub', { authorization: `Bearer ${tokenFor(undefined, { scope: 'publish' })}` }, 403],
    ['publisher key is not a user', { authorization: `Bearer ${publisherKey}` }, 401],
  ];
  for (const path of ['/events', '/notifications', '/notifications/unread-count']) {
    for (const [name, headers, status] of cases) {
      const r = await rawGet(s.url + path, headers, 300);
      t.equal(r.status, status, `${path}: ${name}`);
      const body = JSON.parse(r.text);
      t.equal(body.statusCode, status);
      t.type(body.message, 'string');
      t.notOk(r.text.includes('secret stuff'));
    }
  }
  for (const [name, headers, status] of cases) {
    const r = await fetch(`${s.url}/notifications/1/read`, { method: 'POST', headers });
    t.equal(r.status, status, `mark read: ${name}`);
  }
});

t.test('a subscriber token works as a header, a query parameter or a cookie', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  await s.publish({ user: 'alice', title: 'hi' });
  const tok = tokenFor('alice');
  for (const [how, url, headers] of [
    ['header', '/notifications', { authorization: `Bearer ${tok}` }],
    ['query', `/notifications?token=${tok}`, {}],
    ['cookie', '/notifications', { cookie: `herald_token=${tok}` }],
  ] as const) {
    const r = await fetch(s.url + url, { headers });
    t.equal(r.status, 200, how);
    t.equal(((await r.json()) as { items: unknown[] }).items.length, 1, how);
  }
  const stream = await rawGet(`${s.url}/events?token=${tok}`, {}, 200);
  t.equal(stream.status, 200, 'EventSource-style ?token= on the stream');
});

t.test('only publishers publish', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const body = { user: 'alice', title: 'x' };
  const as = (authorization?: string) => s.publish(body, authorization === undefined ? { authorization: '' } : { authorization });
  t.equal((await as()).status, 401, 'no credentials');
  t.equal((await as('Bearer wrong-key-0123456789')).status, 401, 'wrong key');
  t.equal((await as(`Bearer ${tokenFor('alice')}`)).status, 403, 'a user token cannot publish');
  t.equal((await as(`Bearer ${tokenFor('alice', { scope: 'read' })}`)).status, 403, 'a token without publish scope');
  t.equal((await as(`Bearer ${tokenFor('svc', { scope: 'publish' }, 'x'.repeat(40))}`)).status, 401, 'publish scope signed with another secret');
  t.equal((await as(`Bearer ${tokenFor('svc', { scope: 'publish', exp: 1 })}`)).status, 401, 'expired publisher token');
  t.equal((await as(`Bearer ${publisherKey}`)).status, 201, 'the publisher key');
  t.equal((await as(`Bearer ${tokenFor('billing', { scope: 'notify publish' })}`)).status, 201, 'a JWT with publish in its scope string');
  t.equal((await as(`Bearer ${tokenFor('billing', { scope: ['publish'] })}`)).status, 201, 'a JWT with publish in its scope list');
  t.equal(await s.store.lastId(), 3, 'only the three accepted publishes were stored');
});

t.test('with HERALD_JWT_AUDIENCE, tokens for another audience are refused', async (t) => {
  const s = await startServer({ env: { HERALD_JWT_AUDIENCE: 'herald' } });
  t.teardown(() => s.close());
  const get = (tok: string) => fetch(`${s.url}/notifications`, { headers: { authorization: `Bearer ${tok}` } });
  t.equal((await get(tokenFor('alice', { aud: 'herald' }))).status, 200);
  t.equal((await get(tokenFor('alice', { aud: 'other-app' }))).status, 401);
  t.equal((await get(tokenFor('alice'))).status, 401, 'no audience at all');
  t.ok(jwtSecret.length >= 32);
});
