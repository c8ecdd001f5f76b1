// The Pusher protocol with the real libraries: the `pusher` server SDK publishes through the HTTP API,
// `pusher-js` and `laravel-echo` subscribe over the WebSocket, against a real Herald on loopback.
import { createHmac } from 'node:crypto';
import Echo from 'laravel-echo';
import t from 'tap';
import { WebSocket } from 'ws';
import { heraldReplay } from '../../public/herald-pusher.js';
import { startProxy } from '../support/proxy.js';
import { startServer, type Server } from '../support/server.js';
import { connect } from '../support/sse.js';
import { PusherForEcho, PusherJs, app1, app2, authServer, clientOptions, portOf, pusherApps, pusherClient, serverSdk, subscribed } from '../support/pusher.js';
import { waitUntil } from '../support/wait.js';
import { sleep } from '../../support/util.js';

type Json = Record<string, unknown>;

let s: Server;
t.before(async () => {
  s = await startServer({ env: { HERALD_PUSHER_APPS: pusherApps, HERALD_PUSHER_ACTIVITY_TIMEOUT: '7' } });
});
t.teardown(() => s.close());

/** Records every event a channel receives, by name. */
function recorder(channel: { bind_global(cb: (event: string, data: unknown) => void): unknown }) {
  const got: { event: string; data: unknown }[] = [];
  channel.bind_global((event, data) => {
    if (!event.startsWith('pusher:')) got.push({ event, data });
  });
  return got;
}

/** Laravel Echo with its Pusher connector, as a Laravel app's bootstrap.js makes it, against Herald. */
function echoFor(auth: { url: string }, user: string): Echo<'pusher'> {
  const echo = new Echo({
    broadcaster: 'pusher',
    key: app1.key,
    Pusher: PusherForEcho,
    ...clientOptions(s, auth, user),
  });
  t.teardown(() => echo.disconnect());
  return echo;
}

t.test('the server SDK publishes; pusher-js receives exactly what was sent; each event is a Herald notification', async (t) => {
  const client = await pusherClient(s);
  const got = recorder(await subscribed(client, 'orders'));
  const sdk = serverSdk(s);
  const res = await sdk.trigger('orders', 'created', { id: 7, note: 'é/ü' });
  t.equal(res.status, 200);
  await sdk.trigger(['orders', 'other'], 'text', 'a plain string');
  await sdk.triggerBatch([
    { channel: 'orders', name: 'b1', data: JSON.stringify([1, 2]) },
    { channel: 'orders', name: 'b2', data: '42' },
  ]);
  await waitUntil('four events', () => got.length === 4);
  t.same(got, [
    { event: 'created', data: { id: 7, note: 'é/ü' } },
    { event: 'text', data: 'a plain string' },
    { event: 'b1', data: [1, 2] },
    { event: 'b2', data: 42 },
  ]);

  // Durable: in the history of the topic, for a Herald subscriber allowed to read it.
  const history = await s.request('GET', '/notifications?topic=pusher/app1/orders', 'reader', undefined, { topics: ['pusher/app1/*'] });
  t.equal(history.status, 200);
  const items = (history.body as { items: Json[] }).items.filter((n) => n.topic === 'pusher/app1/orders').reverse();
  t.match(items, [
    { type: 'created', title: 'created', data: { id: 7, note: 'é/ü' }, body: null },
    { type: 'text', data: null, body: 'a plain string' },
    { type: 'b1', data: null, body: '[1,2]' },
    { type: 'b2', data: null, body: '42' },
  ]);
  // A wildcard that does not name the Pusher namespace does not reach into it.
  const refused = await s.request('GET', '/notifications?topic=pusher/app1/orders', 'reader', undefined, { topics: ['*'] });
  t.equal(refused.status, 403);
  t.equal((refused.body as Json).code, 'topic_forbidden');
});

t.test('apps are isolated: the same channel name on another app is another channel', async (t) => {
  const one = recorder(await subscribed(await pusherClient(s), 'shared'));
  const two = recorder(await subscribed(await pusherClient(s, { key: app2.key }), 'shared'));
  await serverSdk(s, app2).trigger('shared', 'for-two', { n: 2 });
  await serverSdk(s).trigger('shared', 'for-one', { n: 1 });
  await waitUntil('both events', () => one.length === 1 && two.length === 1);
  t.same(one, [{ event: 'for-one', data: { n: 1 } }]);
  t.same(two, [{ event: 'for-two', data: { n: 2 } }]);
});

t.test('socket_id excludes the one socket that caused the event', async (t) => {
  const [a, b] = [await pusherClient(s), await pusherClient(s)];
  const [gotA, gotB] = [recorder(await subscribed(a, 'excl')), recorder(await subscribed(b, 'excl'))];
  const sdk = serverSdk(s);
  await sdk.trigger('excl', 'first', { n: 1 }, { socket_id: a.connection.socket_id });
  await sdk.triggerBatch([{ channel: 'excl', name: 'second', data: '{"n":2}', socket_id: b.connection.socket_id }]);
  await sdk.trigger('excl', 'third', { n: 3 });
  await waitUntil('the third event on both', () => gotA.length === 2 && gotB.length === 2);
  t.same(gotA.map((e) => e.event), ['second', 'third']);
  t.same(gotB.map((e) => e.event), ['first', 'third']);
});

t.test('signed requests only: a wrong secret, an unknown app, a stale timestamp or a changed body are refused', async (t) => {
  const wrong = serverSdk(s, { ...app1, secret: 'not-the-secret-0123456789' });
  // The SDK's RequestError carries the status and the body.
  const refusal = (p: Promise<unknown>) => p.then(() => ({}), (e: { status: number; body: string }) => ({ status: e.status, body: e.body }));
  t.match(await refusal(wrong.trigger('orders', 'x', {})), { status: 401, body: /pusher_signature_invalid/ });
  const unknown = serverSdk(s, { ...app1, id: 'nope' });
  t.match(await refusal(unknown.trigger('orders', 'x', {})), { status: 404, body: /pusher_app_not_found/ });
  // What the SDK cannot be made to send: signed by hand.
  const sign = (method: string, path: string, query: string) =>
    `${query}&auth_signature=${createHmac('sha256', app1.secret).update(`${method}\n${path}\n${query}`).digest('hex')}`;
  const stale = sign('GET', '/apps/app1/channels', `auth_key=${app1.key}&auth_timestamp=${Math.floor(Date.now() / 1000) - 601}&auth_version=1.0`);
  const staleRes = await fetch(`${s.url}/apps/app1/channels?${stale}`);
  t.equal(staleRes.status, 401);
  t.match(await staleRes.json(), { code: 'pusher_signature_invalid', message: /auth_timestamp must be within 600 s/ });
  const body = JSON.stringify({ name: 'x', channel: 'orders', data: '{}' });
  const md5 = '0'.repeat(32);
  const changed = sign('POST', '/apps/app1/events', `auth_key=${app1.key}&auth_timestamp=${Math.floor(Date.now() / 1000)}&auth_version=1.0&body_md5=${md5}`);
  const changedRes = await fetch(`${s.url}/apps/app1/events?${changed}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  t.equal(changedRes.status, 401);
  t.match(await changedRes.json(), { code: 'pusher_signature_invalid', message: /body_md5/ });
});

t.test('Echo: private channels are authorised by the app’s endpoint; a bad signature is refused by Herald', async (t) => {
  const auth = await authServer(s);
  const echo = echoFor(auth, 'alice');
  const shipped: unknown[] = [];
  const channel = echo.private('orders.1').listen('.shipped', (e: unknown) => shipped.push(e));
  await new Promise<void>((resolve) => channel.subscribed(() => resolve()));
  await auth.sdk.trigger('private-orders.1', 'shipped', { order: 1 });
  await waitUntil('the private event', () => shipped.length === 1);
  t.same(shipped, [{ order: 1 }]);

  // A socket that signs for itself with a made-up signature.
  const forger = new PusherJs(app1.key, {
    ...clientOptions(s),
    channelAuthorization: { transport: 'ajax', endpoint: '', customHandler: (_p: unknown, cb: (err: Error | null, data: { auth: string }) => void) => cb(null, { auth: `${app1.key}:${'0'.repeat(64)}` }) },
  });
  t.teardown(() => forger.disconnect());
  const errors: Json[] = [];
  forger.connection.bind('error', (e: Json) => errors.push(e));
  await t.rejects(subscribed(forger, 'private-orders.1'), /AuthError.*invalid signature/);
  t.match(errors, [{ type: 'PusherError', data: { code: 4009 } }]);
});

t.test('Echo: presence channels list members, and tell of joins and leaves; channel queries see them', async (t) => {
  const auth = await authServer(s);
  const alice = echoFor(auth, 'alice');
  const events: string[] = [];
  let here: Json[] = [];
  alice
    .join('room.1')
    .here((users: Json[]) => (here = users))
    .joining((u: Json) => events.push(`joining ${String(u.name)}`))
    .leaving((u: Json) => events.push(`leaving ${String(u.name)}`));
  await waitUntil('alice in the room', () => here.length === 1);
  t.same(here, [{ name: 'alice' }]);

  const bob = echoFor(auth, 'bob');
  let bobHere: Json[] = [];
  bob.join('room.1').here((users: Json[]) => (bobHere = users));
  await waitUntil('bob in the room', () => bobHere.length === 2 && events.length === 1);
  t.same(bobHere.map((u) => u.name).sort(), ['alice', 'bob']);
  t.same(events, ['joining bob']);

  const sdk = auth.sdk;
  const users = await (await sdk.get({ path: '/channels/presence-room.1/users' })).json();
  t.same((users as { users: Json[] }).users.map((u) => u.id).sort(), ['alice', 'bob']);
  const info = await (await sdk.get({ path: '/channels/presence-room.1', params: { info: 'user_count,subscription_count' } })).json();
  t.same(info, { occupied: true, user_count: 2, subscription_count: 2 });
  const list = await (await sdk.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } })).json();
  t.match(list, { channels: { 'presence-room.1': { user_count: 2 } } });

  bob.leave('room.1');
  await waitUntil('bob gone', () => events.length === 2);
  t.same(events, ['joining bob', 'leaving bob']);
  const after = await (await sdk.get({ path: '/channels/presence-room.1', params: { info: 'user_count' } })).json();
  t.same(after, { occupied: true, user_count: 1 });
});

t.test('Echo: client events (whispers) reach the channel’s other sockets, on apps that allow them', async (t) => {
  const auth = await authServer(s);
  const [alice, bob] = [echoFor(auth, 'alice'), echoFor(auth, 'bob')];
  const heard: unknown[] = [];
  const own: unknown[] = [];
  const a = alice.private('chat').listenForWhisper('typing', (e: unknown) => heard.push(e));
  const b = bob.private('chat').listenForWhisper('typing', (e: unknown) => own.push(e));
  await Promise.all([a, b].map((c) => new Promise<void>((resolve) => c.subscribed(() => resolve()))));
  b.whisper('typing', { who: 'bob' });
  await waitUntil('the whisper', () => heard.length === 1);
  t.same(heard, [{ who: 'bob' }]);
  await sleep(100);
  t.same(own, [], 'not back to the sender');
  // Not stored: no notification for it in the topic's history.
  const history = await s.request('GET', '/notifications?topic=pusher/app1/private-chat', 'reader', undefined, { topics: ['pusher/app1/*'] });
  t.same((history.body as { items: Json[] }).items.filter((n) => n.topic === 'pusher/app1/private-chat'), []);

  // app2 does not allow client events.
  const auth2 = await authServer(s, app2);
  const client = await pusherClient(s, { key: app2.key, auth: auth2 });
  const channel = await subscribed(client, 'private-chat');
  const errors: Json[] = [];
  client.connection.bind('error', (e: Json) => errors.push(e));
  channel.trigger('client-typing', {});
  await waitUntil('the refusal', () => errors.length === 1);
  t.match(errors, [{ data: { message: /client events are not enabled/ } }]);
});

t.test('the Laravel user channel is the user’s Herald inbox, both ways', async (t) => {
  const auth = await authServer(s);
  const echo = echoFor(auth, '42');
  const got: Json[] = [];
  const channel = echo.private('App.Models.User.42').notification((n: Json) => got.push(n));
  await new Promise<void>((resolve) => channel.subscribed(() => resolve()));
  const laravelEvent = 'Illuminate\\Notifications\\Events\\BroadcastNotificationCreated';
  // What Laravel's `broadcast` notification channel sends.
  await auth.sdk.trigger('private-App.Models.User.42', laravelEvent, { id: 'n-1', type: 'App\\Notifications\\InvoicePaid', amount: 10 });
  // And a Herald publish to the user.
  t.equal((await s.publish({ user: '42', title: 'Hello', type: laravelEvent, data: { id: 'n-2', type: 'App\\Notifications\\Hello' } })).status, 201);
  await waitUntil('both notifications', () => got.length === 2);
  t.match(got, [{ id: 'n-1', amount: 10 }, { id: 'n-2' }]);
  const inbox = await s.request('GET', '/notifications', '42');
  t.match((inbox.body as { items: Json[] }).items.reverse(), [
    { type: laravelEvent, data: { id: 'n-1', amount: 10 }, topic: null },
    { title: 'Hello', data: { id: 'n-2' } },
  ]);
  t.same((await s.request('GET', '/notifications', '43')).body, { items: [], nextCursor: null }, 'nobody else’s');
});

t.test('a Pusher channel never reads an unread count (the protocol has no event for it); an SSE stream does', async (t) => {
  let counts = 0;
  const unreadCount = s.store.unreadCount.bind(s.store);
  s.store.unreadCount = (...args) => (counts++, unreadCount(...args));
  t.teardown(() => void (s.store.unreadCount = unreadCount));
  const auth = await authServer(s);
  const echo = echoFor(auth, '77');
  const channel = echo.private('App.Models.User.77');
  await new Promise<void>((resolve) => channel.subscribed(() => resolve()));
  t.teardown(() => echo.disconnect());
  const n = await s.publish({ user: '77', title: 'to read' });
  // A read changes the user's count: the hub recounts for their streams.
  t.equal((await s.request('POST', `/notifications/${n.body.id}/read`, '77')).status, 200);
  await sleep(200);
  t.equal(counts, 0, 'subscribing and a read cost no count');
  const stream = await connect(s, '77');
  t.teardown(() => stream.close());
  await waitUntil('the SSE stream read its first count', () => counts === 1);
});

t.test('replay: after a dropped connection the plugin resumes each channel; no gap, no duplicate', async (t) => {
  const proxy = await startProxy([portOf(s)]);
  t.teardown(() => proxy.close());
  const client = new PusherJs(app1.key, { ...clientOptions(proxy), wsPort: portOf(proxy) });
  t.teardown(() => client.disconnect());
  const plain = new PusherJs(app1.key, { ...clientOptions(proxy), wsPort: portOf(proxy) });
  t.teardown(() => plain.disconnect());
  const replay = heraldReplay(client);
  const [got, plainGot] = [recorder(await subscribed(client, 'feed')), recorder(await subscribed(plain, 'feed'))];
  const sdk = serverSdk(s);
  await sdk.trigger('feed', 'n', { n: 1 });
  await waitUntil('the first event', () => got.length === 1 && plainGot.length === 1);
  t.ok(replay.lastIds.get('feed')! > 0, 'the id beside the event was seen');

  proxy.hold();
  proxy.cut();
  await waitUntil('both disconnected', () => client.connection.state !== 'connected' && plain.connection.state !== 'connected');
  for (const n of [2, 3]) await sdk.trigger('feed', 'n', { n });
  proxy.release();
  await waitUntil('both reconnected', () => client.connection.state === 'connected' && plain.connection.state === 'connected', 20_000);
  await sdk.trigger('feed', 'n', { n: 4 });
  await waitUntil('the fourth event', () => got.length >= 4 && plainGot.length >= 2);
  await sleep(100);
  t.same(got.map((e) => (e.data as Json).n), [1, 2, 3, 4], 'missed events replayed, in order, once');
  t.same(plainGot.map((e) => (e.data as Json).n), [1, 4], 'without the plugin, what was missed stays missed (as on Pusher)');
});

t.test('ping/pong and activity_timeout; an unknown key or protocol is refused with its code', async (t) => {
  const client = await pusherClient(s);
  const seen: string[] = [];
  client.connection.bind('message', (m: { event: string }) => seen.push(m.event));
  client.connection.send_event('pusher:ping', {});
  await waitUntil('a pong', () => seen.includes('pusher:pong'));
  t.equal((client.connection as unknown as { activityTimeout: number }).activityTimeout, 7000, 'activity_timeout from HERALD_PUSHER_ACTIVITY_TIMEOUT');

  const unknown = new PusherJs('no-such-key', clientOptions(s));
  t.teardown(() => unknown.disconnect());
  const errors: Json[] = [];
  unknown.connection.bind('error', (e: Json) => errors.push(e));
  await waitUntil('the refusal', () => errors.length > 0 && unknown.connection.state === 'disconnected');
  t.match(errors, [{ error: { type: 'PusherError', data: { code: 4001 } } }], 'pusher-js reports the close code, and does not retry');

  // pusher-js only speaks protocol 7: an old client, by hand.
  const old = new WebSocket(`ws://127.0.0.1:${portOf(s)}/app/${app1.key}?protocol=3`);
  const frames: Json[] = [];
  old.on('message', (d) => frames.push(JSON.parse(String(d)) as Json));
  const closed = await new Promise<number>((resolve) => old.on('close', (code) => resolve(code)));
  t.equal(closed, 4007);
  t.match(frames, [{ event: 'pusher:error', data: { code: 4007 } }]);
});
