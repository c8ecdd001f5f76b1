// CORS over HTTP: no cross-origin access unless configured; `*` never with credentials; a list only
// ever echoes its own origins. (WebSocket upgrades follow the same list: test/stream/ws.test.ts.)
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { rawGet, rawRequest, type RawResponse } from '../support/http.js';
import { startServer } from '../support/server.js';
import { tokenFor } from '../support/tokens.js';

const evil = 'https://evil.example';
const app = 'https://app.example';

const preflight = (url: string, origin: string): Promise<RawResponse> =>
  rawRequest('OPTIONS', `${url}/notifications`, {
    origin,
    'access-control-request-method': 'POST',
    'access-control-request-headers': 'authorization, content-type',
  });

/** A simple (not preflighted) cross-origin read, as a page's fetch with credentials sends it. */
const simple = (url: string, origin: string): Promise<RawResponse> =>
  rawRequest('GET', `${url}/notifications/unread-count`, { origin, cookie: `herald_token=${tokenFor('alice')}` });

const cors = (res: RawResponse) => ({
  origin: res.headers['access-control-allow-origin'],
  credentials: res.headers['access-control-allow-credentials'],
});

t.test('by default no origin gets any CORS header, preflight or not, in every mode', async (t) => {
  const modes: Record<string, string>[] = [{}, { NODE_ENV: 'production' }, { HERALD_JWT_SECRET: '', HERALD_PUBLISHER_KEY: '' }];
  for (const env of modes) {
    const s = await startServer({ env });
    t.teardown(() => s.close());
    t.same(s.config.cors.origins, [], `no origin allowed with ${JSON.stringify(env)}`);
    const pre = await preflight(s.url, evil);
    t.equal(pre.status, 404, 'a preflight finds nothing');
    t.same(JSON.parse(pre.text), { statusCode: 404, code: 'route_not_found', error: 'Not Found', message: 'no route for OPTIONS /notifications' });
    t.same(cors(pre), { origin: undefined, credentials: undefined });
    const get = await simple(s.url, evil);
    t.equal(get.status, 200, 'the request itself is answered (a browser keeps the answer from the page)');
    t.same(cors(get), { origin: undefined, credentials: undefined }, 'with no CORS header');
    t.equal(get.headers['access-control-expose-headers'], undefined);
  }
});

t.test('`*` lets any origin read, never with credentials', async (t) => {
  const s = await startServer({ env: { HERALD_CORS_ORIGINS: '*' } });
  t.teardown(() => s.close());
  const pre = await preflight(s.url, evil);
  t.equal(pre.status, 204);
  t.same(cors(pre), { origin: '*', credentials: undefined }, 'the preflight allows any origin, not its credentials');
  t.match(pre.headers['access-control-allow-headers'], /authorization/);
  t.same(cors(await simple(s.url, evil)), { origin: '*', credentials: undefined }, 'the origin is not echoed');
  // What `*` is for: a page elsewhere opening an EventSource with ?token= and no cookies.
  const stream = await rawGet(`${s.url}/events?token=${tokenFor('alice')}`, { origin: evil }, 200);
  t.equal(stream.status, 200);
  t.same(cors(stream), { origin: '*', credentials: undefined }, 'on the stream too');
});

t.test('a list: its origins get themselves and credentials; no other origin is echoed', async (t) => {
  const s = await startServer({ env: { HERALD_CORS_ORIGINS: `${app}, https://admin.example:8443` } });
  t.teardown(() => s.close());
  for (const origin of [app, 'https://admin.example:8443']) {
    t.same(cors(await preflight(s.url, origin)), { origin, credentials: 'true' }, `preflight from ${origin}`);
    const get = await simple(s.url, origin);
    t.same(cors(get), { origin, credentials: 'true' }, `read from ${origin}`);
    t.match(get.headers.vary, /origin/i, 'caches keep answers to different origins apart');
    t.equal(get.headers['access-control-expose-headers'], 'idempotent-replayed');
  }
  for (const origin of [evil, 'null', `${app}.evil.example`, 'http://app.example']) {
    t.equal(cors(await preflight(s.url, origin)).origin, undefined, `no preflight for ${origin}`);
    t.equal(cors(await simple(s.url, origin)).origin, undefined, `not echoed: ${origin}`);
  }
});

t.test('HERALD_CORS_ORIGINS must be `*` or exact origins', async (t) => {
  const origins = (v: string) => loadConfig({ HERALD_CORS_ORIGINS: v }).cors.origins;
  t.same(origins(''), []);
  t.same(origins('*'), ['*']);
  t.same(origins(' https://a.example , http://localhost:5173 '), ['https://a.example', 'http://localhost:5173']);
  t.throws(() => origins(`*,${app}`), {
    message: 'HERALD_CORS_ORIGINS is either * (any origin, without credentials) or a list of origins, not both',
  });
  for (const bad of ['https://a.example/', 'https://a.example/app', 'a.example', 'null', 'https://A.example', 'https://a.example:443']) {
    t.throws(() => origins(bad), { message: `HERALD_CORS_ORIGINS entries must be origins like https://app.example.com (no path or trailing slash), got "${bad}"` });
  }
});
