// The SSE write path: events go straight to the socket (no chunked framing), several events of one
// tick share a write, a catch-up replay is not mistaken for a slow consumer, and an open stream's
// socket is taken out of node:http so that nothing of its request is kept.
import type { IncomingMessage, ServerResponse } from 'node:http';
import t from 'tap';
import { sleep } from '../../support/util.js';
import { collectGarbage } from '../support/gc.js';
import { rawConnection, rawGet } from '../support/http.js';
import { startServer } from '../support/server.js';
import { connect, parseSse, rawStream } from '../support/sse.js';
import { tokenFor } from '../support/tokens.js';
import { waitUntil } from '../support/wait.js';

t.test('the stream is close-delimited: no chunk framing between events', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const first = await s.publish({ user: 'ann', title: 'one' });
  const res = await rawGet(`${s.url}/events`, { authorization: `Bearer ${tokenFor('ann')}`, 'last-event-id': String(first.body.id - 1) }, 400);
  t.equal(res.status, 200);
  t.notOk(res.headers['transfer-encoding'], 'not chunked');
  t.equal(res.headers.connection, 'close', 'the body ends with the connection');
  t.match(
    res.text,
    /^retry: \d+\n\nid: \d+\n\nid: \d+\nevent: notification\ndata: \{.*\}\n\nevent: unread\ndata: \{"count":1\}\n\n$/,
    'nothing but SSE on the wire',
  );
});

t.test('a resuming stream gets its head, resume point, replay and count in one write', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const missed = await s.publish({ user: 'ann', title: 'missed' });
  const conn = await rawConnection(s.url);
  t.teardown(() => conn.socket.destroy());
  // The replay comes from the ring a few ms after the request (it gathers resumes into one read):
  // the head waits for it rather than going out on its own, a write and a client wake-up less per resume.
  const first = new Promise<string>((resolve) => conn.socket.once('data', (d: string) => resolve(d)));
  conn.socket.write(
    `GET /events HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${tokenFor('ann')}\r\nlast-event-id: ${missed.body.id - 1}\r\n\r\n`,
  );
  const chunk = await first;
  t.match(chunk, /^HTTP\/1\.1 200 /, 'the head');
  t.match(
    chunk.slice(chunk.indexOf('\r\n\r\n') + 4),
    new RegExp(`^retry: \\d+\n\nid: ${missed.body.id - 1}\n\nid: ${missed.body.id}\nevent: notification\ndata: .*\n\nevent: unread\ndata: \\{"count":1\\}\n\n$`),
    'and the whole start of the stream, in the same chunk',
  );
  const live = await s.publish({ user: 'ann', title: 'live' });
  await waitUntil('the live event', () => conn.text().includes(`id: ${live.body.id}\n`));
});

t.test('notifications published together all arrive, in id order, on every stream', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const clients = await Promise.all(['a', 'b', 'c'].map((u) => connect(s, u)));
  t.teardown(() => clients.forEach((c) => c.close()));
  // Concurrent publishes share group commits, so several events reach each socket in one tick.
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => s.publish({ broadcast: true, title: `n${i}` })));
  const ids = results.map((r) => r.body.id as number).sort((x, y) => x - y);
  for (const c of clients) {
    await c.waitFor((e) => e.length >= 40, 15_000);
    t.same(c.ids(), ids);
  }
});

t.test('a replay larger than HERALD_MAX_PENDING_BYTES is delivered, not cut as a slow consumer', async (t) => {
  const s = await startServer({ env: { HERALD_MAX_PENDING_BYTES: '1024' } });
  t.teardown(() => s.close());
  const ids: number[] = [];
  for (let i = 0; i < 60; i++) ids.push((await s.publish({ user: 'zoe', title: `missed ${i}`, body: 'x'.repeat(100) })).body.id);
  // ~15 KB of replay against a 1 KiB limit.
  const res = await rawGet(`${s.url}/events`, { authorization: `Bearer ${tokenFor('zoe')}`, 'last-event-id': '0' }, 1000);
  t.same(
    parseSse(res.text).map((e) => (e.event === 'unread' ? e.event : Number(e.id))),
    [...ids, 'unread'],
  );
  const c = await connect(s, 'zoe', '', { 'last-event-id': String(ids[29]) });
  t.teardown(() => c.close());
  await c.waitFor((e) => e.length >= 30, 10_000);
  const live = await s.publish({ user: 'zoe', title: 'live after the replay' });
  await c.waitFor((e) => e.length >= 31, 10_000);
  t.same(c.ids(), [...ids.slice(30), live.body.id], 'the rest of the replay, then live');
});

t.test('an open stream keeps nothing of its request: node:http and Fastify let go of it', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  // Weak references only: whatever still holds a stream's request or response after it opened shows here.
  const held: WeakRef<IncomingMessage | ServerResponse>[] = [];
  s.app.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.startsWith('/events')) held.push(new WeakRef(req), new WeakRef(res));
  });
  const clients = await Promise.all(['a', 'b', 'c'].map((u) => connect(s, u)));
  t.teardown(() => clients.forEach((c) => c.close()));
  t.equal(held.length, 6);
  await collectGarbage();
  t.same(
    held.map((r) => r.deref()?.constructor.name),
    held.map(() => undefined),
    'every request and response of the open streams was collected',
  );
  const sent = await s.publish({ broadcast: true, title: 'after' });
  for (const c of clients) await c.waitFor((e) => e.length === 1);
  t.same(clients.map((c) => c.ids()), clients.map(() => [sent.body.id]), 'and the streams still deliver');
  clients[0]!.close();
  await waitUntil('the closed stream to leave the hub', () => s.app.hub.size === 2);
});

t.test('bytes a client sends after its request are ignored, and the stream goes on', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const stream = await rawStream(s.url, 'pip');
  t.teardown(() => stream.socket.destroy());
  // node:http would have parsed this as a second request on the connection and answered 400 and closed.
  stream.socket.write('GET /notifications HTTP/1.1\r\nHost: x\r\n\r\nnot http at all\r\n\r\n');
  await sleep(50);
  const sent = await s.publish({ user: 'pip', title: 'still here' });
  await waitUntil('the event after the junk', () => stream.text().includes(`id: ${sent.body.id}\n`));
  t.notMatch(stream.text(), /HTTP\/1\.1 [^2]/, 'no second response on the stream');
  stream.socket.end();
  await waitUntil('the half-closed stream to leave the hub', () => s.app.hub.size === 0);
});
