import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import t from 'tap';
import { sleep } from '../../support/util.js';
import { collectGarbage } from '../support/gc.js';
import { rawGet } from '../support/http.js';
import { startServer, type Server } from '../support/server.js';
import { connect } from '../support/sse.js';
import { tokenFor } from '../support/tokens.js';
import { waitUntil } from '../support/wait.js';
import { WsClient, wsConnect, wsRefusal, wsUrl } from '../support/ws.js';

t.test('notifications reach the right users and topics, with the same payload JSON as SSE', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const a = await wsConnect(s, 'a', '?topic=news&topic=sport&lastEventId=0', { topics: ['news', 'sport'] });
  const b = await wsConnect(s, 'b', '?topic=news&lastEventId=0', { topics: ['news'] });
  const c = await wsConnect(s, 'c', '?lastEventId=0');
  const aSse = await connect(s, 'a', '?topic=news&topic=sport', {}, { topics: ['news', 'sport'] });
  t.teardown(() => ([a, b, c, aSse].forEach((x) => x.close())));
  await waitUntil('four streams in the hub', () => s.app.hub.size === 4, 5000);

  const multi = await s.publish({ users: ['a', 'c'], title: 'multi', body: 'b', data: { k: [1, 'x'] }, type: 't' });
  const sport = await s.publish({ topic: 'sport', title: 'goal' });
  const news = await s.publish({ topic: 'news', title: 'headline' });
  const all = await s.publish({ broadcast: true, title: 'everyone' });
  const ids = [multi, sport, news, all].map((r) => r.body.id as number);

  await a.waitFor(() => a.ids().length >= 4);
  await b.waitFor(() => b.ids().length >= 2);
  await c.waitFor(() => c.ids().length >= 2);
  await aSse.waitFor((e) => e.length >= 4);
  await sleep(100);
  t.same(a.ids(), ids);
  t.same(b.ids(), [news.body.id, all.body.id]);
  t.same(c.ids(), [multi.body.id, all.body.id]);
  t.same(a.of('notification')[0], { event: 'notification', id: multi.body.id, data: aSse.events[0]!.data }, 'frame wraps the SSE payload');
  t.same(
    a.of('notification').map((f) => f.data),
    aSse.events.map((e) => e.data),
    'every payload is the same JSON on both transports',
  );
  t.notOk('users' in a.of('notification')[0].data, 'subscribers never see the recipient list');
});

t.test('auth is checked before the upgrade: a refused client gets an HTTP error and never a socket', async (t) => {
  const s = await startServer({ env: { HERALD_MAX_STREAMS_PER_USER: '1' } });
  t.teardown(() => s.close());
  const url = wsUrl(s);

  const none = await wsRefusal(url);
  t.equal(none.status, 401, 'no token');
  t.match(none.body, { statusCode: 401, error: 'Unauthorized' });
  t.equal((await wsRefusal(url, { authorization: `Bearer ${tokenFor('a', {}, 'another-secret-that-is-long-enough-0123456')}` })).status, 401, 'forged');
  const expired = tokenFor('a', { exp: Math.floor(Date.now() / 1000) - 60 });
  t.equal((await wsRefusal(url, { authorization: `Bearer ${expired}` })).status, 401, 'expired, in the header');
  t.equal((await wsRefusal(wsUrl(s, `?token=${expired}`))).status, 401, 'expired, in the query');
  t.equal((await wsRefusal(url, { cookie: 'herald_token=garbage' })).status, 401, 'garbage cookie');
  t.equal((await wsRefusal(url, { authorization: 'Bearer not.a.jwt' })).status, 401, 'not a JWT');
  t.equal((await wsRefusal(wsUrl(s, '?lastEventId=abc'), { authorization: `Bearer ${tokenFor('a')}` })).status, 400, 'bad lastEventId');
  t.equal((await wsRefusal(wsUrl(s, '?colour=red'), { authorization: `Bearer ${tokenFor('a')}` })).status, 400, 'unknown query field');
  t.equal(s.app.hub.size, 0, 'no refused client ever joined the hub');

  // The query and the cookie carry a token too (a browser's WebSocket cannot set headers).
  const q = new WsClient(wsUrl(s, `?token=${tokenFor('viaquery')}&lastEventId=0`));
  const k = new WsClient(wsUrl(s, '?lastEventId=0'), { cookie: `herald_token=${tokenFor('viacookie')}` });
  t.teardown(() => (q.close(), k.close()));
  await q.opened;
  await k.opened;
  await waitUntil('two streams', () => s.app.hub.size === 2, 5000);
  const pq = await s.publish({ user: 'viaquery', title: 'q' });
  const pk = await s.publish({ user: 'viacookie', title: 'k' });
  await q.waitFor(() => q.ids().length >= 1);
  await k.waitFor(() => k.ids().length >= 1);
  t.same(q.ids(), [pq.body.id]);
  t.same(k.ids(), [pk.body.id]);

  const over = await wsRefusal(wsUrl(s), { cookie: `herald_token=${tokenFor('viacookie')}` });
  t.equal(over.status, 429, 'past HERALD_MAX_STREAMS_PER_USER');
  const sse = await rawGet(`${s.url}/events`, { authorization: `Bearer ${tokenFor('viacookie')}` });
  t.equal(sse.status, 429, 'SSE and WebSocket streams count against the same limit');
  t.equal(s.app.hub.size, 2);
});

t.test('browsers may open a socket only from an allowed origin (WebSockets have no CORS)', async (t) => {
  const s = await startServer({ env: { HERALD_CORS_ORIGINS: 'https://app.example' } });
  t.teardown(() => s.close());
  const auth = { authorization: `Bearer ${tokenFor('alice')}` };
  const evil = await wsRefusal(wsUrl(s), { ...auth, origin: 'https://evil.example' });
  t.same(evil, {
    status: 403,
    body: { statusCode: 403, code: 'origin_forbidden', error: 'Forbidden', message: 'origin https://evil.example may not open a WebSocket (HERALD_CORS_ORIGINS)' },
  });
  t.equal((await wsRefusal(wsUrl(s), { ...auth, origin: 'null' })).status, 403, 'an opaque origin');
  for (const origin of ['https://app.example', s.url, undefined]) {
    const c = new WsClient(wsUrl(s, '?lastEventId=0'), origin === undefined ? auth : { ...auth, origin });
    t.teardown(() => c.close());
    await c.opened;
    t.pass(`opened with origin ${String(origin)}`);
  }
});

t.test('by default only Herald’s own pages and clients that send no Origin open a socket', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const cookie = { cookie: `herald_token=${tokenFor('alice')}` };
  t.same(await wsRefusal(wsUrl(s), { ...cookie, origin: 'https://evil.example' }), {
    status: 403,
    body: { statusCode: 403, code: 'origin_forbidden', error: 'Forbidden', message: 'origin https://evil.example may not open a WebSocket (HERALD_CORS_ORIGINS)' },
  });
  t.equal((await wsRefusal(wsUrl(s, `?token=${tokenFor('alice')}`), { origin: 'https://evil.example' })).status, 403, 'with ?token= too');
  for (const [why, headers] of [['Herald’s own page', { ...cookie, origin: s.url }], ['no Origin', cookie]] as const) {
    const c = new WsClient(wsUrl(s, '?lastEventId=0'), headers);
    t.teardown(() => c.close());
    await c.opened;
    t.pass(`opened with ${why}`);
  }
});

t.test('with `*` any page may open a socket, but only with ?token=: its cookie is not a credential', async (t) => {
  const s = await startServer({ env: { HERALD_CORS_ORIGINS: '*' } });
  t.teardown(() => s.close());
  const cookie = { cookie: `herald_token=${tokenFor('alice')}` };
  const elsewhere = { ...cookie, origin: 'https://evil.example' };
  t.same(await wsRefusal(wsUrl(s), elsewhere), {
    status: 401,
    body: { statusCode: 401, code: 'token_missing', error: 'Unauthorized', message: 'a subscriber token is required (Authorization: Bearer, ?token= or cookie)' },
  });
  const opened = [
    { query: `?token=${tokenFor('bob')}`, headers: elsewhere, user: 'bob', why: 'another origin with ?token= (its cookie ignored)' },
    { query: '', headers: { ...cookie, origin: s.url }, user: 'alice', why: 'Herald’s own page with the cookie' },
    { query: '', headers: cookie, user: 'alice', why: 'no Origin (not a browser) with the cookie' },
  ];
  for (const { query, headers, user, why } of opened) {
    const c = new WsClient(wsUrl(s, `${query}${query ? '&' : '?'}lastEventId=0`), headers);
    t.teardown(() => c.close());
    await c.opened;
    await s.publish({ user, title: why });
    await c.waitFor((f) => f.some((x) => x.event === 'notification' && x.data.title === why));
    t.pass(`${why}: opened as ${user}`);
  }
});

t.test('a listed origin opens a socket with the cookie', async (t) => {
  const s = await startServer({ env: { HERALD_CORS_ORIGINS: 'https://app.example' } });
  t.teardown(() => s.close());
  const c = new WsClient(wsUrl(s, '?lastEventId=0'), { cookie: `herald_token=${tokenFor('alice')}`, origin: 'https://app.example' });
  t.teardown(() => c.close());
  await c.opened;
  t.pass('opened');
});

/** Publishes `n` notifications to `user`, one after another; resolves with their ids. */
async function publishMany(s: Server, user: string, n: number, prefix: string): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) ids.push((await s.publish({ user, title: `${prefix}${i}` })).body.id);
  return ids;
}

t.test('catch-up across a reconnect with ?lastEventId=: the gap in order, no duplicate, then live', async (t) => {
  const readsDeploys = { topics: ['deploys'] };
  const s = await startServer();
  t.teardown(() => s.close());
  const first = await wsConnect(s, 'alice', '?topic=deploys&lastEventId=0', readsDeploys);
  t.teardown(() => first.close());
  await waitUntil('one stream in the hub', () => s.app.hub.size === 1, 5000);
  const before = await publishMany(s, 'alice', 2, 'before');
  await first.waitFor(() => first.ids().length === 2);
  t.same(first.ids(), before);
  first.close();
  await first.closed;
  await waitUntil('the first socket to leave the hub', () => s.app.hub.size === 0, 5000);

  const gap = [
    (await s.publish({ user: 'alice', title: 'gap1' })).body.id,
    (await s.publish({ user: 'bob', title: 'not for alice' })).body.id,
    (await s.publish({ topic: 'deploys', title: 'gap2' })).body.id,
    (await s.publish({ topic: 'other', title: 'not subscribed' })).body.id,
    (await s.publish({ broadcast: true, title: 'gap3' })).body.id,
  ];
  const second = await wsConnect(s, 'alice', `?topic=deploys&lastEventId=${before[1]}`, readsDeploys);
  t.teardown(() => second.close());
  await second.waitFor(() => second.ids().length >= 3);
  const live = (await s.publish({ user: 'alice', title: 'live' })).body.id;
  await second.waitFor(() => second.ids().length >= 4);
  await sleep(100);
  t.same(second.ids(), [gap[0], gap[2], gap[4], live], 'exactly the missed ones alice may see, in order, then live');
});

t.test('resume sent as the first message, with publishes racing the reconnect: no gap, no duplicate, in order', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const first = await wsConnect(s, 'alice', '?lastEventId=0');
  t.teardown(() => first.close());
  await waitUntil('one stream in the hub', () => s.app.hub.size === 1, 5000);

  // A publisher runs throughout; the client drops and resumes in the middle of it.
  let stop = false;
  const published: number[] = [];
  const publisher = (async () => {
    for (let i = 0; i < 400 && !stop; i++) published.push((await s.publish({ user: 'alice', title: `n${i}` })).body.id);
  })();
  await first.waitFor(() => first.ids().length >= 10, 10_000);
  first.close();
  await first.closed;
  const seen = first.ids();
  await sleep(50);

  const second = await wsConnect(s, 'alice');
  t.teardown(() => second.close());
  await sleep(50);
  const reply = await second.command('resume', { lastEventId: seen[seen.length - 1] });
  t.same(reply, { event: 'reply', ref: reply.ref, data: {} });
  await sleep(100);
  stop = true;
  await publisher;
  const last = published[published.length - 1]!;
  await second.waitFor(() => second.ids().includes(last), 10_000);
  await sleep(100);
  const got = [...seen, ...second.ids()];
  t.ok(published.length > seen.length, 'some were published while the client was away or resuming');
  t.same(got, published, 'everything published, once each, in id order');
  const replyAt = second.frames.findIndex((f) => f.event === 'reply');
  // Live notifications released after the count may come before the reply.
  const head = second.frames.slice(0, replyAt).map((f) => f.event);
  const countAt = head.indexOf('unread');
  t.same(
    head,
    head.map((_, i) => (i === 0 ? 'ready' : i === countAt ? 'unread' : 'notification')),
    'ready, then the replay, then the count, then live ones and the reply',
  );
  t.ok(countAt > 0, 'one count, after the replay');
});

t.test('a stream without a resume point: events from the moment the socket opened', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const old = (await s.publish({ user: 'alice', title: 'before the socket' })).body.id;

  // Resume without an id: live, including what was published between the upgrade and the message.
  const c = await wsConnect(s, 'alice');
  t.teardown(() => c.close());
  await waitUntil('one stream in the hub', () => s.app.hub.size === 1, 5000);
  const early = (await s.publish({ user: 'alice', title: 'before the first message' })).body.id;
  t.same((await c.command('resume')).data, {});
  const late = (await s.publish({ user: 'alice', title: 'after' })).body.id;
  await c.waitFor(() => c.ids().length >= 2);
  t.same(c.ids(), [early, late]);
  t.notOk(c.ids().includes(old));

  // Resume only as the first message: later, it is refused and the socket stays open.
  const again = await c.command('resume', { lastEventId: 0 });
  t.match(again, { event: 'error', data: { statusCode: 409, error: 'Conflict' } });
  t.same((await c.command('ping')).data, {}, 'still open');

  // A client that never sends anything is started live after one heartbeat interval.
  const fast = await startServer({ env: { HERALD_HEARTBEAT_MS: '100' } });
  t.teardown(() => fast.close());
  const quiet = await wsConnect(fast, 'bob');
  t.teardown(() => quiet.close());
  const held = (await fast.publish({ user: 'bob', title: 'while bob was quiet' })).body.id;
  await quiet.waitFor(() => quiet.ids().length >= 1, 10_000);
  const after = (await fast.publish({ user: 'bob', title: 'live' })).body.id;
  await quiet.waitFor(() => quiet.ids().length >= 2);
  t.same(quiet.ids(), [held, after]);
});

t.test('commands: subscribe, unsubscribe, read, read-all, ping, each answered under its ref', async (t) => {
  const s = await startServer({ env: { HERALD_MAX_TOPICS_PER_STREAM: '2' } });
  t.teardown(() => s.close());
  const c = await wsConnect(s, 'alice', '?lastEventId=0', { topics: ['news', 'sport', 'weather'] });
  const otherTab = await wsConnect(s, 'alice', '?lastEventId=0');
  t.teardown(() => (c.close(), otherTab.close()));

  const sub = await c.command('subscribe', { topic: 'news' });
  t.same(sub, { event: 'reply', ref: sub.ref, data: { topics: ['news'] } });
  t.same((await c.command('subscribe', { topic: 'news' })).data, { topics: ['news'] }, 'subscribing twice is harmless');
  const news = (await s.publish({ topic: 'news', title: 'after subscribe' })).body.id;
  await c.waitFor(() => c.ids().includes(news));

  t.same((await c.command('subscribe', { topic: 'sport' })).data, { topics: ['news', 'sport'] });
  const tooMany = await c.command('subscribe', { topic: 'weather' });
  t.same(tooMany.data, { statusCode: 400, code: 'too_many_topics', error: 'Bad Request', message: 'at most 2 topics per stream' });
  t.equal(tooMany.event, 'error');

  t.same((await c.command('unsubscribe', { topic: 'news' })).data, { topics: ['sport'] });
  t.same((await c.command('unsubscribe', { topic: 'news' })).data, { topics: ['sport'] }, 'unsubscribing twice is harmless');
  const missed = (await s.publish({ topic: 'news', title: 'after unsubscribe' })).body.id;
  const marker = (await s.publish({ user: 'alice', title: 'marker' })).body.id;
  await c.waitFor(() => c.ids().includes(marker));
  t.notOk(c.ids().includes(missed), 'no news after unsubscribing');
  t.equal(otherTab.ids().includes(news), false, 'subscribing one socket does not subscribe the other');

  const read = await c.command('read', { id: marker });
  t.same(read.data, { id: marker, read: true });
  await otherTab.waitFor((f) => f.some((x) => x.event === 'read'));
  t.same(otherTab.of('read')[0], { event: 'read', data: { ids: [marker] } }, "the user's other tab is told");
  const history = await s.request('GET', '/notifications', 'alice');
  t.equal(history.body.items.find((x: { id: number }) => x.id === marker).read, true, 'committed to the store');

  const notMine = (await s.publish({ user: 'bob', title: 'for bob' })).body.id;
  for (const id of [notMine, 999999]) {
    const r = await c.command('read', { id });
    t.same(r.data, { statusCode: 404, code: 'notification_not_found', error: 'Not Found', message: `notification ${id} not found` });
  }

  const all = await c.command('read-all');
  t.type(all.data.upTo, 'number');
  t.ok(all.data.upTo >= notMine);
  t.equal((await s.request('GET', '/notifications/unread-count', 'alice')).body.count, 0);
  await otherTab.waitFor((f) => f.some((x) => x.event === 'read' && x.data.all === true));

  const ping = await c.command('ping');
  t.same(ping, { event: 'reply', ref: ping.ref, data: {} });
  c.send({ type: 'ping', ref: 7 });
  await c.waitFor((f) => f.some((x) => x.ref === 7));
  t.same(c.frames.find((x) => x.ref === 7), { event: 'reply', ref: 7, data: {} }, 'a numeric ref is echoed as a number');

  // Replies come back in the order the commands were sent.
  for (let i = 0; i < 10; i++) c.send({ type: 'ping', ref: `seq${i}` });
  await c.waitFor((f) => f.some((x) => x.ref === 'seq9'));
  t.same(
    c.frames.filter((x) => typeof x.ref === 'string' && x.ref.startsWith('seq')).map((x) => x.ref),
    Array.from({ length: 10 }, (_, i) => `seq${i}`),
  );
});

t.test('bad messages get an error reply and the socket stays open', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const c = await wsConnect(s, 'alice', '?lastEventId=0');
  t.teardown(() => c.close());
  // Each case below takes the next frame as the answer: the stream's own frames (its resume point, then
  // its unread count once caught up) must be in first.
  await c.waitFor((f) => f.some((x) => x.event === 'unread'));

  const cases: [unknown, string | null, string][] = [
    ['{not json', null, 'message is not valid JSON'],
    ['[1,2]', null, 'message must be a JSON object'],
    ['"ping"', null, 'message must be a JSON object'],
    [{ ref: 'a' }, 'a', '"type" must be one of "resume", "subscribe", "unsubscribe", "read", "read-all", "ping"'],
    [{ type: 'explode', ref: 'b' }, 'b', '"type" must be one of'],
    [{ type: 'subscribe', ref: 'c' }, 'c', "subscribe must have required property 'topic'"],
    [{ type: 'subscribe', ref: 'd', topic: 'bad topic!' }, 'd', 'subscribe.topic must match pattern'],
    [{ type: 'read', ref: 'e', id: -1 }, 'e', 'read.id must be >= 0'],
    [{ type: 'read', ref: 'f', id: 'forty-two' }, 'f', 'read.id must be integer'],
    [{ type: 'ping', ref: 'g', colour: 'red' }, 'g', 'ping has an unknown field "colour"'],
    [{ type: 'ping', ref: { nested: true } }, null, 'ping.ref must be string,number'],
    // The body's rules hold for messages too; such a message is not read at all, so its ref is not either.
    ['{"type":"ping","ref":"h","type":"ping"}', null, 'message has a duplicate key "type"'],
    ['{"type":"ping","ref":9007199254740993}', null, 'message has a number that JSON cannot carry exactly in ref: 9007199254740993'],
    ['{"type":"ping","ref":"i","__proto__":{}}', null, 'message has a "__proto__" key, which is not allowed'],
  ];
  for (const [msg, ref, message] of cases) {
    const before = c.frames.length;
    c.send(msg);
    await c.waitFor((f) => f.length > before);
    const reply = c.frames[before];
    t.equal(reply.event, 'error', `error reply to ${JSON.stringify(msg)}`);
    t.equal(reply.ref, ref);
    t.equal(reply.data.statusCode, 400);
    t.equal(reply.data.error, 'Bad Request');
    t.match(reply.data.message, message);
  }
  const before = c.frames.length;
  c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
  await c.waitFor((f) => f.length > before);
  t.match(c.frames[before], { event: 'error', ref: null, data: { statusCode: 400, message: 'messages must be text frames holding JSON' } });

  t.match((await c.command('read', { id: '1' })).data, { statusCode: 400, message: 'read.id must be integer' }, 'JSON types are not coerced');
  t.match((await c.command('subscribe', { topic: 42 })).data, { statusCode: 400, message: 'subscribe.topic must be string' });
  t.same((await c.command('ping')).data, {}, 'the socket is still open and answering');
  const live = (await s.publish({ user: 'alice', title: 'still live' })).body.id;
  await c.waitFor(() => c.ids().includes(live));
  t.equal(c.ws.readyState, c.ws.OPEN);
});

t.test('an oversize message is closed with 1009, a flooding client with 1008, and both leave the hub', async (t) => {
  const s = await startServer({ env: { HERALD_WS_MAX_MESSAGE_BYTES: '256', HERALD_WS_MAX_MESSAGES_PER_SECOND: '5' } });
  t.teardown(() => s.close());

  const polite = await wsConnect(s, 'polite', '?lastEventId=0');
  t.teardown(() => polite.close());
  for (let i = 0; i < 5; i++) t.same((await polite.command('ping')).data, {}, 'a burst within the bound is answered');
  await sleep(1200);
  t.same((await polite.command('ping', { pad: 'x'.repeat(150) })).event, 'error', 'a message just under the size bound is read');

  const big = await wsConnect(s, 'big', '?lastEventId=0');
  await waitUntil('two streams in the hub', () => s.app.hub.size === 2, 5000);
  big.send({ type: 'ping', ref: 'x'.repeat(300) });
  const bigClose = await big.closed;
  t.equal(bigClose.code, 1009, 'message too big');

  const flood = await wsConnect(s, 'flood', '?lastEventId=0');
  for (let i = 0; i < 100; i++) flood.send({ type: 'ping', ref: i });
  const floodClose = await flood.closed;
  t.equal(floodClose.code, 1008, 'policy violation');
  t.equal(floodClose.reason, 'too many messages');
  t.ok(flood.of('reply').length <= 6, `at most about the burst was answered (${flood.of('reply').length})`);

  await waitUntil('the closed sockets to leave the hub', () => s.app.hub.size === 1, 5000);
  t.same((await polite.command('ping')).data, {}, 'other clients are unaffected');
});

/** Completes a WebSocket upgrade on a raw TCP socket, then never reads again: a peer that vanished. */
function deadPeer(s: Server, user: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const { port } = new URL(s.url);
    const sock = net.connect(Number(port), '127.0.0.1', () => {
      sock.write(
        `GET /ws?lastEventId=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${tokenFor(user)}\r\n` +
          'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
    });
    let head = '';
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      sock.off('data', onData);
      sock.pause();
      if (head.startsWith('HTTP/1.1 101')) resolve(sock);
      else reject(new Error(`upgrade refused: ${head}`));
    };
    sock.on('data', onData);
    sock.on('error', () => {});
  });
}

t.test('heartbeats: a peer that stops answering pings is freed, a live one stays', async (t) => {
  const s = await startServer({ env: { HERALD_HEARTBEAT_MS: '250' } });
  t.teardown(() => s.close());
  const live = await wsConnect(s, 'alive', '?lastEventId=0');
  t.teardown(() => live.close());
  let pings = 0;
  live.ws.on('ping', () => pings++);

  const dead = await deadPeer(s, 'ghost');
  t.teardown(() => dead.destroy());
  const gone = new Promise<void>((resolve) => dead.on('close', () => resolve()));
  // The server joins the hub before it writes the 101 that resolved deadPeer; freeing takes two heartbeats.
  t.equal(s.app.hub.streamsOf('ghost'), 1, 'the dead peer joined the hub');
  await waitUntil('the dead peer to be freed', () => s.app.hub.streamsOf('ghost') === 0, 5000);
  dead.resume(); // read what the server sent (pings, unanswered), then its end of the connection
  await gone;
  t.pass('the server closed the TCP connection');

  await waitUntil('five pings', () => pings >= 5, 5000);
  t.equal(s.app.hub.streamsOf('alive'), 1, 'a client that answers pings stays');
  const id = (await s.publish({ user: 'alive', title: 'still here' })).body.id;
  await live.waitFor(() => live.ids().includes(id));
});

t.test('a client that stops reading is cut off past HERALD_MAX_PENDING_BYTES; a reading one is not', async (t) => {
  const s = await startServer({ env: { HERALD_MAX_PENDING_BYTES: String(256 * 1024) } });
  t.teardown(() => s.close());
  const reader = await wsConnect(s, 'reader', '?lastEventId=0');
  t.teardown(() => reader.close());
  const stalled = await deadPeer(s, 'stalled');
  t.teardown(() => stalled.destroy());
  t.equal(s.app.hub.streamsOf('stalled'), 1);

  // Big broadcasts until the stalled socket's queue passes the bound (bounded: the kernel's buffers fill first).
  const data = { blob: 'x'.repeat(60_000) };
  const sent: number[] = [];
  for (let i = 0; i < 300 && s.app.hub.streamsOf('stalled') === 1; i++) {
    sent.push((await s.publish({ broadcast: true, title: `big ${i}`, data })).body.id);
  }
  t.equal(s.app.hub.streamsOf('stalled'), 0, `the stalled client was cut off after ${sent.length} notifications`);
  await reader.waitFor(() => reader.ids().length === sent.length, 20_000);
  t.same(reader.ids(), sent, 'the reading client got every one');
  t.equal(s.app.hub.streamsOf('reader'), 1);
});

t.test('server shutdown closes sockets with 1001 so clients reconnect and resume', async (t) => {
  const s = await startServer();
  const c = await wsConnect(s, 'alice', '?lastEventId=0');
  t.teardown(() => c.close());
  await waitUntil('one stream in the hub', () => s.app.hub.size === 1, 5000);
  await s.close();
  t.match(await c.closed, { code: 1001 });
  t.equal(s.app.hub.size, 0);
});

t.test('shutdown does not wait on a peer that never answers the close handshake', async (t) => {
  const s = await startServer();
  const dead = await deadPeer(s, 'ghost');
  t.teardown(() => dead.destroy());
  await waitUntil('one stream in the hub', () => s.app.hub.size === 1, 5000);
  const started = Date.now();
  await s.close();
  const took = Date.now() - started;
  t.ok(took < 5000, `closed in ${took} ms (ws alone would wait 30 s for the close frame)`);
});

t.test('an open socket keeps nothing of its upgrade request: node:http, Fastify and @fastify/websocket let go of it', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  // Weak references only. @fastify/websocket's own 'upgrade' listener ran first and gave the socket
  // the response it routes the request with.
  const held: WeakRef<IncomingMessage | ServerResponse>[] = [];
  s.app.server.on('upgrade', (req: IncomingMessage) => {
    const res = (req.socket as { _httpMessage?: ServerResponse })._httpMessage;
    held.push(new WeakRef(req), ...(res ? [new WeakRef(res)] : []));
  });
  const clients = await Promise.all(['a', 'b', 'c'].map((u) => wsConnect(s, u, '?lastEventId=0', { topics: ['news'] })));
  t.teardown(() => clients.forEach((c) => c.close()));
  await waitUntil('three sockets in the hub', () => s.app.hub.size === 3);
  t.equal(held.length, 6, 'a request and a response per socket');
  await collectGarbage();
  t.same(
    held.map((r) => r.deref()?.constructor.name),
    held.map(() => undefined),
    'every request and response of the open sockets was collected',
  );
  // What the session copied out of its request still works: the user, its topic claims, the logger.
  t.same((await clients[0]!.command('subscribe', { topic: 'news' })).data, { topics: ['news'] });
  t.equal((await clients[0]!.command('subscribe', { topic: 'sport' })).data.code, 'topic_forbidden');
  const sent = await s.publish({ topic: 'news', title: 'after' });
  await clients[0]!.waitFor(() => clients[0]!.ids().includes(sent.body.id));
  const all = await s.publish({ broadcast: true, title: 'everyone' });
  for (const c of clients) await c.waitFor(() => c.ids().includes(all.body.id));
  clients[1]!.close();
  await waitUntil('the closed socket to leave the hub', () => s.app.hub.size === 2);
});
