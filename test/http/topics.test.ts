// Who may read what: a subscriber names only topics its token's `topics` claim or HERALD_PUBLIC_TOPICS
// allows, on every way of naming one; publish tokens and subscriber tokens each do only their own job.
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { projectFile } from '../../src/paths.js';
import { tempDir } from '../../support/util.js';
import { rawGet, type Json } from '../support/http.js';
import { startServer, type Server } from '../support/server.js';
import { connect } from '../support/sse.js';
import { jwtSecret, tokenFor } from '../support/tokens.js';
import { WsClient, wsConnect, wsRefusal, wsUrl } from '../support/ws.js';

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** The status and body of a GET as the holder of `token`; a stream that opens answers 200 with no JSON. */
async function get(s: Server, path: string, token: string): Promise<{ status: number; body: Json }> {
  const r = await rawGet(s.url + path, bearer(token), 300);
  return { status: r.status, body: r.status === 200 ? undefined : JSON.parse(r.text) };
}

const refusal = (topic: string) => ({
  statusCode: 403,
  code: 'topic_forbidden',
  error: 'Forbidden',
  message: `may not read topic "${topic}": neither the token's topics claim nor HERALD_PUBLIC_TOPICS allows it`,
});

t.test('a topic the token does not allow is 403, naming it, on every way of naming a topic', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  await s.publish({ topic: 'admin-secrets', title: 'the root password' });
  const direct = (await s.publish({ user: 'mallory', title: 'for mallory' })).body.id as number;
  const everyone = (await s.publish({ broadcast: true, title: 'for everyone' })).body.id as number;
  const mallory = tokenFor('mallory');

  t.same((await get(s, '/events?topic=admin-secrets', mallory)).body, refusal('admin-secrets'), 'GET /events');
  t.same((await get(s, '/events?topic=admin-secrets&lastEventId=0', mallory)).body, refusal('admin-secrets'), 'GET /events catching up');
  t.same((await get(s, '/notifications?topic=admin-secrets', mallory)).body, refusal('admin-secrets'), 'history');
  t.same((await get(s, '/notifications/unread-count?topic=admin-secrets', mallory)).body, refusal('admin-secrets'), 'unread count');
  t.same(await wsRefusal(wsUrl(s, '?topic=admin-secrets'), bearer(mallory)), { status: 403, body: refusal('admin-secrets') }, 'the /ws upgrade');
  t.same(await wsRefusal(wsUrl(s, `?topic=admin-secrets&token=${mallory}`)), { status: 403, body: refusal('admin-secrets') }, '/ws, token in the query');

  const ws = await wsConnect(s, 'mallory', '?lastEventId=0');
  t.teardown(() => ws.close());
  const sub = await ws.command('subscribe', { topic: 'admin-secrets' });
  t.same(sub, { event: 'error', ref: sub.ref, data: refusal('admin-secrets') }, 'the subscribe command');
  t.same((await ws.command('ping')).event, 'reply', 'the socket stays open after the refusal');
  await ws.waitFor(() => ws.ids().length >= 2);
  t.same(ws.ids(), [direct, everyone], "the user's own notifications and broadcasts need no topics claim");

  const list = await fetch(`${s.url}/notifications`, { headers: bearer(mallory) });
  t.same(((await list.json()) as Json).items.map((n: Json) => n.id), [everyone, direct], 'history without a topic filter');
});

t.test('patterns: exact topic names and prefixes ending in *', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const tok = tokenFor('pat', { topics: ['deploys', 'org:42:*'] });
  for (const topic of ['deploys', 'org:42:', 'org:42:builds', 'org:42:a:b']) {
    t.equal((await get(s, `/events?topic=${topic}`, tok)).status, 200, `${topic} is allowed`);
    t.equal((await get(s, `/notifications/unread-count?topic=${topic}`, tok)).status, 200, `${topic} is allowed in history`);
  }
  for (const topic of ['deploys2', 'deploy', 'org:42', 'org:43:builds', 'org:4']) {
    t.same((await get(s, `/events?topic=${topic}`, tok)).body, refusal(topic), `${topic} is refused`);
  }
  t.same((await get(s, '/notifications?topic=deploys&topic=org:43:x&topic=org:42:y', tok)).body, refusal('org:43:x'), 'one refused topic refuses the query');
  t.equal((await get(s, '/events?topic=anything&topic=at:all', tokenFor('all', { topics: ['*'] }))).status, 200, '"*" is every topic');
  t.same((await get(s, '/events?topic=deploys', tokenFor('none', { topics: [] }))).body, refusal('deploys'), 'an empty claim allows no topic');

  // Through the WebSocket command too, and delivery follows: the stream gets the topics it named.
  const ws = await wsConnect(s, 'pat', '?lastEventId=0', { topics: ['deploys', 'org:42:*'] });
  t.teardown(() => ws.close());
  t.same((await ws.command('subscribe', { topic: 'org:42:builds' })).data, { topics: ['org:42:builds'] });
  t.same((await ws.command('subscribe', { topic: 'org:43:builds' })).data, refusal('org:43:builds'));
  await s.publish({ topic: 'org:43:builds', title: 'not for pat' });
  const ok = (await s.publish({ topic: 'org:42:builds', title: 'for pat' })).body.id as number;
  await ws.waitFor(() => ws.ids().length >= 1);
  t.same(ws.ids(), [ok]);
});

t.test('HERALD_PUBLIC_TOPICS: topics every subscriber may read, besides its own', async (t) => {
  const s = await startServer({ env: { HERALD_PUBLIC_TOPICS: 'news, status:*' } });
  t.teardown(() => s.close());
  const plain = tokenFor('pub');
  t.equal((await get(s, '/events?topic=news&topic=status:eu', plain)).status, 200, 'public topics need no claim');
  t.equal((await get(s, '/notifications?topic=news', plain)).status, 200);
  t.same((await get(s, '/events?topic=sport', plain)).body, refusal('sport'), 'others still do');
  const withClaim = tokenFor('pub', { topics: ['sport'] });
  t.equal((await get(s, '/events?topic=news&topic=sport', withClaim)).status, 200, 'the union of both');

  const ws = await wsConnect(s, 'pub', '?lastEventId=0');
  t.teardown(() => ws.close());
  t.same((await ws.command('subscribe', { topic: 'status:us' })).data, { topics: ['status:us'] }, 'a public topic through subscribe');
  t.same((await ws.command('subscribe', { topic: 'sport' })).data, refusal('sport'));
});

t.test('HERALD_PUBLIC_TOPICS is validated at start', async (t) => {
  const env = (v: string) => ({ HERALD_PUBLIC_TOPICS: v, HERALD_JWT_SECRET: jwtSecret });
  t.same(loadConfig(env('')).auth.publicTopics, [], 'empty by default');
  t.same(loadConfig(env(' a , org:*,*, ')).auth.publicTopics, ['a', 'org:*', '*']);
  for (const bad of ['a*b', '**', '*a', 'a b', 'a\nb', 't'.repeat(129), 'ok,b@d!']) {
    t.throws(() => loadConfig(env(bad)), { message: /^HERALD_PUBLIC_TOPICS: ".*" is not a topic pattern/ }, JSON.stringify(bad));
  }
});

t.test('a topics claim that is not an array of patterns makes the token unusable, never ignored', async (t) => {
  const s = await startServer({ env: { HERALD_PUBLIC_TOPICS: '*' } });
  t.teardown(() => s.close());
  const cases: [string, unknown, RegExp][] = [
    ['a string', 'deploys', /it is a string$/],
    ['an object', { deploys: true }, /it is an object$/],
    ['null', null, /it is null$/],
    ['a number in the list', ['deploys', 7], /item 1 is not one$/],
    ['a space', ['a b'], /item 0 is not one$/],
    ['a * inside', ['org:*:builds'], /item 0 is not one$/],
    ['two *', ['**'], /item 0 is not one$/],
    ['too long', ['t'.repeat(129)], /item 0 is not one$/],
  ];
  for (const [name, topics, why] of cases) {
    const tok = tokenFor('claimy', { topics });
    // Refused even where no topic is named, and even though every topic is public.
    for (const path of ['/events', '/notifications', '/notifications/unread-count']) {
      const r = await get(s, path, tok);
      t.equal(r.status, 403, `${path}: ${name}`);
      t.match(r.body.message, /^the token's topics claim must be an array of topic patterns/);
      t.match(r.body.message, why);
    }
    t.equal((await wsRefusal(wsUrl(s), bearer(tok))).status, 403, `/ws: ${name}`);
  }
});

t.test('token kinds: a publish token cannot subscribe, a subscriber token cannot publish', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  await s.publish({ user: 'x', title: 'for x' });
  const publishTokens = [
    tokenFor('x', { scope: 'publish' }),
    tokenFor('x', { scope: 'read publish' }),
    tokenFor('x', { scope: ['publish'], topics: ['*'] }),
  ];
  for (const tok of publishTokens) {
    for (const path of ['/events', '/notifications', '/notifications/unread-count', '/events?topic=deploys']) {
      const r = await get(s, path, tok);
      t.equal(r.status, 403, `${path} with a publish token`);
      t.match(r.body.message, /^a publish token cannot subscribe/);
    }
    const mark = await fetch(`${s.url}/notifications/read-all`, { method: 'POST', headers: bearer(tok) });
    t.equal(mark.status, 403, 'nor mark read');
    t.equal((await wsRefusal(wsUrl(s), bearer(tok))).status, 403, 'nor open a WebSocket');
    t.equal((await wsRefusal(wsUrl(s, `?token=${tok}`))).status, 403, 'nor with the token in the query');
  }
  // The same token publishes.
  t.equal((await s.publish({ user: 'x', title: 'y' }, bearer(publishTokens[0]!))).status, 201);

  for (const tok of [tokenFor('x'), tokenFor('x', { topics: ['*'] }), tokenFor('x', { scope: 'read' })]) {
    const r = await s.publish({ user: 'x', title: 'z' }, bearer(tok));
    t.same(r.body, { statusCode: 403, code: 'token_not_publisher', error: 'Forbidden', message: 'the token has no publish scope' }, 'a subscriber token cannot publish');
  }
});

t.test('with HERALD_JWT_AUDIENCE, a subscriber token with aud and topics reads them', async (t) => {
  const s = await startServer({ env: { HERALD_JWT_AUDIENCE: 'herald-topics' } });
  t.teardown(() => s.close());
  t.equal((await get(s, '/events?topic=deploys', tokenFor('aud', { aud: 'herald-topics', topics: ['deploys'] }))).status, 200);
  t.equal((await get(s, '/events?topic=deploys', tokenFor('aud', { topics: ['deploys'] }))).status, 401, 'no aud: refused before any topic');
  t.same((await get(s, '/events?topic=ops', tokenFor('aud', { aud: 'herald-topics', topics: ['deploys'] }))).body, refusal('ops'));
});

t.test('a refused stream takes no slot and gets no stream head', async (t) => {
  const s = await startServer({ env: { HERALD_MAX_STREAMS_PER_USER: '1' } });
  t.teardown(() => s.close());
  const refused = await rawGet(`${s.url}/events?topic=secret`, bearer(tokenFor('slot')), 300);
  t.equal(refused.status, 403);
  t.match(refused.headers['content-type'], /application\/json/);
  const c = await connect(s, 'slot');
  t.teardown(() => c.close());
  t.equal(s.app.hub.streamsOf('slot'), 1, 'the refused one never joined');
  const ws = new WsClient(wsUrl(s, '?topic=secret'), bearer(tokenFor('other')));
  await t.rejects(ws.opened, /upgrade refused: 403/);
});

t.test('npm run token -- <user> --topics mints a token with those topics', async (t) => {
  const s = await startServer();
  const dataDir = tempDir();
  t.teardown(async () => {
    await s.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const run = (...args: string[]) =>
    promisify(execFile)(process.execPath, [projectFile('dist', 'src', 'token.js'), ...args], {
      env: { PATH: process.env.PATH ?? '', HERALD_JWT_SECRET: jwtSecret, HERALD_DATA_DIR: dataDir },
      timeout: 15_000,
    });
  const tok = (await run('alice', '--topics', 'deploys,org:*')).stdout.trim();
  t.equal((await get(s, '/events?topic=deploys&topic=org:1', tok)).status, 200, 'its topics');
  t.same((await get(s, '/events?topic=news', tok)).body, refusal('news'), 'and only those');
  const plain = (await run('alice')).stdout.trim();
  t.same((await get(s, '/events?topic=deploys', plain)).body, refusal('deploys'), 'without --topics, none');
  await t.rejects(run('alice', '--topics', 'a*b'), { code: 2, stderr: /--topics: "a\*b" is not a topic pattern/ });
  await t.rejects(run('--publish', '--topics', 'a'), { code: 2 }, 'a publish token takes no topics');
});
