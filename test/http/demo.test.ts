import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { isLoopback, loadConfig } from '../../src/config.js';
import { loadSecrets } from '../../src/secrets.js';
import { tempDir } from '../../support/util.js';
import { publishTo, rawGet, type Json } from '../support/http.js';
import { spawnServer, startServer, type Child } from '../support/server.js';
import { jwtSecret, publisherKey } from '../support/tokens.js';

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
  t.equal(s.config.demo.enabled, false);
  for (const body of [undefined, {}, { user: 'mallory' }]) {
    const res = await post(`${s.url}/demo/session`, body);
    t.equal(res.status, 404, 'POST /demo/session is a 404');
    t.same(res.body, { statusCode: 404, code: 'route_not_found', error: 'Not Found', message: 'no route for POST /demo/session' });
  }
});

t.test('production without a secret has no demo either, and a secret refuses demo mode', async (t) => {
  const s = await startServer({ env: { HERALD_JWT_SECRET: '', NODE_ENV: 'production' } });
  t.teardown(() => s.close());
  t.equal(s.config.demo.enabled, false);
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
  const s = await startServer({ env: { HERALD_JWT_SECRET: '', HERALD_PUBLISHER_KEY: '' } });
  t.teardown(() => s.close());
  t.equal(s.config.demo.enabled, true, 'on by default with nothing configured, on a loopback host');

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
  const s = await startServer({ env: { HERALD_JWT_SECRET: '', HERALD_PUBLISHER_KEY: '' } });
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

t.test('demo mode is on by default only with nothing configured on a loopback host', async (t) => {
  const demo = (env: Record<string, string>) => loadConfig({ HERALD_JWT_SECRET: '', HERALD_PUBLISHER_KEY: '', ...env }).demo.enabled;
  t.equal(demo({}), true, 'nothing configured, the default HOST 127.0.0.1');
  for (const host of ['localhost', 'LOCALHOST', '127.0.0.1', '127.8.9.10', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) {
    t.ok(isLoopback(host), `${host} is loopback`);
    t.equal(demo({ HOST: host }), true, `on with HOST=${host}`);
  }
  for (const host of ['0.0.0.0', '::', '192.168.1.20', '10.0.0.1', '::ffff:10.0.0.1', '128.0.0.1', '127.example.com', 'herald.internal']) {
    t.notOk(isLoopback(host), `${host} is not loopback`);
    t.equal(demo({ HOST: host }), false, `off with HOST=${host}`);
  }
  t.equal(demo({ HERALD_PUBLISHER_KEY: publisherKey }), false, 'a configured publisher key alone turns it off');
  t.equal(demo({ HERALD_JWT_SECRET: jwtSecret }), false, 'so does a configured secret');
  t.equal(demo({ NODE_ENV: 'production' }), false, 'and NODE_ENV=production');
  t.equal(demo({ HERALD_DEMO: 'false' }), false, 'and HERALD_DEMO=false');
  t.equal(demo({ HERALD_DEMO: 'true', HERALD_PUBLISHER_KEY: publisherKey }), true, 'HERALD_DEMO=true asks for it on loopback');
  t.throws(() => demo({ HERALD_DEMO: 'true', HOST: '0.0.0.0' }), {
    message: 'HERALD_DEMO=true on HOST=0.0.0.0 (not a loopback address) would let anyone who reaches this port act as any user; set HERALD_DEMO_PUBLIC=true too if that is what you mean',
  });
  t.equal(demo({ HERALD_DEMO: 'true', HERALD_DEMO_PUBLIC: 'true', HOST: '0.0.0.0' }), true, 'HERALD_DEMO_PUBLIC=true says the operator means it');
  t.equal(demo({ HERALD_DEMO_PUBLIC: 'true', HOST: '0.0.0.0' }), false, 'HERALD_DEMO_PUBLIC alone turns nothing on');
  t.throws(() => demo({ HERALD_DEMO: 'true', HERALD_DEMO_PUBLIC: 'maybe', HOST: '::' }), { message: 'HERALD_DEMO_PUBLIC must be true or false, got "maybe"' });
});

/** A spawned server whose data dir is removed when `t` ends. */
async function spawned(t: Test, env: Record<string, string>): Promise<{ child: Child; dataDir: string; local: string }> {
  const dataDir = tempDir();
  const child = await spawnServer({ HERALD_DATA_DIR: dataDir, ...env }).catch((err: unknown) => {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  });
  t.teardown(async () => {
    await child.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  // Bound to every interface or not, test traffic goes to loopback only.
  return { child, dataDir, local: `http://127.0.0.1:${new URL(child.url).port}` };
}

const kept = (dataDir: string): { jwtSecret?: string; publisherKey?: string } => JSON.parse(readFileSync(join(dataDir, 'secrets.json'), 'utf8'));
const fileMode = (file: string) => statSync(file).mode & 0o777;

t.test('HOST=0.0.0.0, a publisher key and no JWT secret yet: no demo session, and no credential in the banner', async (t) => {
  const { child, dataDir, local } = await spawned(t, { HOST: '0.0.0.0', HERALD_JWT_SECRET: '' });
  const res = await post(`${local}/demo/session`, { user: 'mallory' });
  t.equal(res.status, 404, 'nobody is handed a token');
  const out = child.output();
  const secret = kept(dataDir).jwtSecret!;
  t.ok(secret, 'the generated JWT secret is kept (npm run token signs with it)');
  t.notOk(out.includes(secret), 'the generated secret is not printed');
  t.notOk(out.includes(publisherKey), 'the configured key is not printed');
  t.notMatch(out, /TOKEN=ey/, 'no token is printed');
  t.match(out, `Subscriber tokens: no HERALD_JWT_SECRET is set, so one was generated and kept in ${join(dataDir, 'secrets.json')}`);
  t.match(out, 'TOKEN=$(npm run -s token -- alice)');
});

t.test('HERALD_DEMO=true on a non-loopback HOST refuses to start without HERALD_DEMO_PUBLIC=true', async (t) => {
  await t.rejects(
    spawned(t, { HOST: '0.0.0.0', HERALD_DEMO: 'true', HERALD_JWT_SECRET: '', HERALD_PUBLISHER_KEY: '' }),
    /server exited:\nherald: configuration error: HERALD_DEMO=true on HOST=0\.0\.0\.0 \(not a loopback address\).*set HERALD_DEMO_PUBLIC=true too/,
  );
});

t.test('a generated publisher key outside demo mode: kept in secrets.json (0600), named but never printed', async (t) => {
  const { child, dataDir, local } = await spawned(t, { HERALD_JWT_SECRET: '', HERALD_PUBLISHER_KEY: '', HERALD_DEMO: 'false' });
  const file = join(dataDir, 'secrets.json');
  t.equal(fileMode(file), 0o600, 'readable by its owner only');
  const { jwtSecret: secret, publisherKey: key } = kept(dataDir);
  const out = child.output();
  t.notOk(out.includes(key!), 'the key is not printed');
  t.notOk(out.includes(secret!), 'nor the secret');
  t.notMatch(out, /TOKEN=ey/, 'nor a token');
  t.match(out, `Publisher key: generated and kept in ${file} (mode 0600`);
  // What the banner says to run really reads the key, which really publishes.
  const line = out.split('\n').find((l) => l.trim().startsWith('KEY=$('));
  t.ok(line, 'the banner says how to read the key');
  const read = execFileSync('/bin/sh', ['-c', `${line!.trim()}; printf %s "$KEY"`], { encoding: 'utf8' });
  t.equal(read, key);
  t.equal((await publishTo(local, { user: 'alice', title: 'with the kept key' }, { authorization: `Bearer ${read}` })).status, 201);
});

t.test('nothing configured on loopback (npm start on a fresh checkout): demo mode prints a working token and key', async (t) => {
  const { child, dataDir, local } = await spawned(t, { HERALD_JWT_SECRET: '', HERALD_PUBLISHER_KEY: '' });
  t.equal(fileMode(join(dataDir, 'secrets.json')), 0o600);
  const out = child.output();
  t.match(out, `Demo inbox: open ${child.url}/ in a browser`);
  const key = kept(dataDir).publisherKey!;
  t.match(out, `Publisher key (kept in ${join(dataDir, 'secrets.json')})`);
  t.match(out, `\n  KEY=${key}\n  TOKEN=ey`, 'the local demo is where credentials may be printed: paste-ready lines');
  const token = /TOKEN=(ey\S+)/.exec(out)?.[1];
  t.ok(token, 'a token is printed');
  t.equal((await publishTo(local, { user: 'alice', title: 'hi' }, { authorization: `Bearer ${key}` })).status, 201);
  const history = await fetch(`${local}/notifications`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(((await history.json()) as Json).items.length, 1, 'the printed token reads alice’s inbox');
  t.equal((await post(`${local}/demo/session`, {})).status, 200);
});

t.test('secrets.json is made readable by its owner only, also when it existed with a looser mode', async (t) => {
  const dataDir = tempDir();
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const file = join(dataDir, 'secrets.json');
  writeFileSync(file, '{}\n');
  chmodSync(file, 0o644);
  const secrets = loadSecrets(loadConfig({ HERALD_DATA_DIR: dataDir }));
  t.equal(fileMode(file), 0o600);
  t.same(kept(dataDir), { jwtSecret: secrets.jwtSecret, publisherKey: secrets.publisherKey, vapid: secrets.vapid }, 'the generated secrets are kept');
});

t.test('a webhook secret is generated once endpoints are configured: kept, printed in demo mode only', async (t) => {
  const hooks = { HERALD_WEBHOOKS: 'https://hooks.example.invalid/herald' };
  const demo = await spawned(t, { ...hooks, HERALD_JWT_SECRET: '', HERALD_PUBLISHER_KEY: '' });
  const secret = (kept(demo.dataDir) as { webhookSecret?: string }).webhookSecret!;
  t.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/, 'whsec_ and 32 bytes in base64');
  t.match(demo.child.output(), `Webhook signing secret (kept in ${join(demo.dataDir, 'secrets.json')}): ${secret}`);

  const quiet = await spawned(t, { ...hooks, HERALD_JWT_SECRET: '', HERALD_PUBLISHER_KEY: '', HERALD_DEMO: 'false' });
  const other = (kept(quiet.dataDir) as { webhookSecret?: string }).webhookSecret!;
  t.match(other, /^whsec_/);
  t.notOk(quiet.child.output().includes(other), 'outside demo mode the secret is not printed');
  t.match(quiet.child.output(), `Webhook signing secret: generated and kept in ${join(quiet.dataDir, 'secrets.json')}, as webhookSecret`);

  const none = await spawned(t, { HERALD_JWT_SECRET: '', HERALD_PUBLISHER_KEY: '' });
  t.notOk('webhookSecret' in kept(none.dataDir), 'no endpoint, no secret: secrets.json as it was');
});
