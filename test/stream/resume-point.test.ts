// A stream that has received nothing yet still resumes without a gap: every stream starts with its
// resume point (SSE: an `id:`-only event right after `retry:`; WebSocket: the `ready` frame), so a
// client that drops before its first notification reconnects from where it started.
import t from 'tap';
import { sleep } from '../../support/util.js';
import { rawGet } from '../support/http.js';
import { startProxy } from '../support/proxy.js';
import { startServer } from '../support/server.js';
import { SseClient } from '../support/sse.js';
import { tokenFor } from '../support/tokens.js';
import { waitUntil } from '../support/wait.js';
import { wsConnect } from '../support/ws.js';

t.test('an SSE stream starts with an id-only event right after retry:, at the id its catch-up starts from', async (t) => {
  const s = await startServer({ env: { HERALD_RETRY_MS: '1500' } });
  t.teardown(() => s.close());
  const mine = (await s.publish({ user: 'ann', title: 'for ann' })).body.id as number;
  // The newest id is someone else's: the resume point is the store's head, not ann's last one.
  const head = (await s.publish({ user: 'someone-else', title: 'not for ann' })).body.id as number;
  const stream = async (headers: Record<string, string> = {}) =>
    (await rawGet(`${s.url}/events`, { authorization: `Bearer ${tokenFor('ann')}`, ...headers }, 300)).text;

  // After the resume point (and any replay), the unread count: ann's one notification.
  const unread = 'event: unread\ndata: {"count":1}\n\n';
  t.equal(await stream(), `retry: 1500\n\nid: ${head}\n\n${unread}`, 'no Last-Event-ID: the head, the count, and nothing else until something new');
  t.match(
    await stream({ 'last-event-id': String(mine - 1) }),
    new RegExp(`^retry: 1500\\n\\nid: ${mine - 1}\\n\\nid: ${mine}\\nevent: notification\\ndata: .*\\n\\n${unread}$`),
    'Last-Event-ID: that id, then the replay, then the count',
  );
  t.equal(
    await stream({ 'last-event-id': String(head) }),
    `retry: 1500\n\nid: ${head}\n\n${unread}`,
    'Last-Event-ID at the head (nothing missed): that id too',
  );
  t.match(
    await stream({ 'last-event-id': String(head + 100) }),
    new RegExp(`^retry: 1500\\n\\nid: ${head}\\n\\nid: ${head}\\nevent: reload\\n`),
    'an id the server never issued: the head it reloads from',
  );
});

t.test(
  'the eventsource package: open, receive nothing, drop, publish, reconnect by itself: the notification arrives once',
  async (t) => {
    const s = await startServer({ env: { HERALD_RETRY_MS: '100' } });
    t.teardown(() => s.close());
    await s.publish({ user: 'someone-else', title: 'before bob connects' });
    const proxy = await startProxy([Number(new URL(s.url).port)]);
    t.teardown(() => proxy.close());
    const bob = new SseClient(`${proxy.url}/events`, tokenFor('bob'));
    t.teardown(() => bob.close());
    await bob.opened;
    await waitUntil('bob in the hub', () => s.app.hub.streamsOf('bob') === 1);
    await sleep(50);

    // The connection drops; bob's reconnect waits at the proxy until the publish is done.
    proxy.hold();
    proxy.cut();
    await waitUntil('the server to see bob go', () => s.app.hub.streamsOf('bob') === 0);
    const missed = (await s.publish({ user: 'bob', title: 'while bob was away' })).body.id as number;
    proxy.release();

    await bob.waitFor((e) => e.length >= 1, 10_000);
    const live = (await s.publish({ user: 'bob', title: 'after' })).body.id as number;
    await bob.waitFor((e) => e.length >= 2, 10_000);
    await sleep(200);
    t.same(bob.ids(), [missed, live], 'the missed one once, then live');
    t.equal(proxy.connections[0], 2, 'one connection, then the EventSource’s own reconnect');
  },
);

t.test('WebSocket: the ready frame carries the resume point, and a reconnect from it gets what was missed', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const head = (await s.publish({ user: 'someone-else', title: 'before cat connects' })).body.id as number;

  const first = await wsConnect(s, 'cat');
  t.teardown(() => first.close());
  t.same((await first.command('ping')).data, {}, 'a first command starts the stream live');
  t.same(first.frames[0], { event: 'ready', id: head, data: {} }, 'ready comes first, at the store head');
  first.close();
  await first.closed;
  await waitUntil('cat to leave the hub', () => s.app.hub.streamsOf('cat') === 0);

  const missed = (await s.publish({ user: 'cat', title: 'while cat was away' })).body.id as number;
  const again = await wsConnect(s, 'cat', `?lastEventId=${first.frames[0].id}`);
  t.teardown(() => again.close());
  await again.waitFor(() => again.ids().length >= 1);
  t.same(again.frames[0], { event: 'ready', id: head, data: {} }, 'resuming: ready carries the id it resumes from');
  t.same(again.ids(), [missed], 'the missed one');

  // With `resume` as the first message: ready, the replay, then the reply.
  const third = await wsConnect(s, 'cat');
  t.teardown(() => third.close());
  const reply = await third.command('resume', { lastEventId: head });
  t.same(
    third.frames.map((f) => [f.event, f.id]),
    [['ready', head], ['notification', missed], ['unread', undefined], ['reply', undefined]],
  );
  t.same(reply.data, {});

  // A client ahead of the server: ready and reload both carry the head it starts again from.
  const ahead = await wsConnect(s, 'cat', `?lastEventId=${missed + 100}`);
  t.teardown(() => ahead.close());
  await ahead.waitFor((f) => f.length >= 3);
  t.same(
    ahead.frames.map((f) => [f.event, f.id]),
    [['ready', missed], ['reload', missed], ['unread', undefined]],
  );
});
