// HeraldClient (packages/client) outside the browser (Node, with the `eventsource` package): the paths a browser
// test cannot steer, such as a refused token, a reload event and a clean close.
import { EventSource } from 'eventsource';
import t, { type Test } from 'tap';
import { HeraldClient, type HeraldNotification, type HeraldState } from '../../packages/client/src/herald-client.js';
import { sleep } from '../../support/util.js';
import { startServer, type Server } from '../support/server.js';
import { tokenFor } from '../support/tokens.js';
import { waitUntil } from '../support/wait.js';

/** sessionStorage's shape, in memory. */
class MemoryStorage {
  readonly map = new Map<string, string>();
  getItem(k: string) {
    return this.map.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.map.set(k, v);
  }
}

/** A client against `s` that records what it sees; closed when the test ends. */
function client(t: Test, s: Server, opts: Partial<ConstructorParameters<typeof HeraldClient>[0]> & { token: ConstructorParameters<typeof HeraldClient>[0]['token'] }) {
  const c = new HeraldClient({ url: s.url, EventSource, storage: new MemoryStorage(), ...opts });
  const seen = { notifications: [] as HeraldNotification[], states: [] as HeraldState[], reloads: [] as unknown[] };
  c.on('notification', (n) => seen.notifications.push(n));
  c.on('state', (st) => seen.states.push(st));
  c.on('reload', (r) => seen.reloads.push(r));
  t.teardown(() => c.close());
  return { c, seen };
}

t.test('resumes after the stored id, and keeps the newest id in storage', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const storage = new MemoryStorage();
  const first = client(t, s, { token: tokenFor('fay'), storage, resumeKey: 'k' });
  first.c.connect();
  await waitUntil('connected', () => first.c.state === 'connected');
  await sleep(20);
  const a = await s.publish({ user: 'fay', title: 'a' });
  await waitUntil('a', () => first.seen.notifications.length === 1);
  t.equal(storage.getItem('k'), String(a.body.id));
  first.c.close();

  const missed = [await s.publish({ user: 'fay', title: 'b' }), await s.publish({ user: 'fay', title: 'c' })].map((r) => r.body.id);
  const second = client(t, s, { token: tokenFor('fay'), storage, resumeKey: 'k' });
  second.c.connect();
  await waitUntil('the missed two', () => second.seen.notifications.length === 2);
  t.same(second.seen.notifications.map((n) => n.id), missed);
  t.equal(storage.getItem('k'), String(missed[1]));
});

t.test('a refused token is replaced by asking the token function again', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  let calls = 0;
  // The first token is signed with the wrong secret (like an expired one, it gets a 401).
  const token = () => (++calls === 1 ? tokenFor('gus', {}, 'x'.repeat(40)) : tokenFor('gus'));
  const { c, seen } = client(t, s, { token });
  c.connect();
  await waitUntil('connected', () => c.state === 'connected');
  t.equal(calls, 2, 'asked once more after the 401');
  t.same(seen.states, ['connecting', 'reconnecting', 'connected']);
  await sleep(20);
  await s.publish({ user: 'gus', title: 'hello' });
  await waitUntil('the notification', () => seen.notifications.length === 1);
});

t.test('a reload event is passed on and moves the resume point', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const head = (await s.publish({ user: 'hal', title: 'x' })).body.id as number;
  const storage = new MemoryStorage();
  // An id the server never issued (a reset database, say): the server says reload from `head`.
  const { c, seen } = client(t, s, { token: tokenFor('hal'), storage, resumeKey: 'k', lastEventId: head + 1000 });
  c.connect();
  await waitUntil('reload', () => seen.reloads.length === 1);
  t.same(seen.reloads[0], { reason: 'ahead-of-server', lastId: head });
  t.equal(c.lastEventId, head);
  t.equal(storage.getItem('k'), String(head));
});

t.test('close() ends the stream on the server and stops every event', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const { c, seen } = client(t, s, { token: tokenFor('ida') });
  c.connect();
  await waitUntil('connected', () => c.state === 'connected');
  t.equal(s.app.hub.streamsOf('ida'), 1);
  c.close();
  t.equal(c.state, 'closed');
  await waitUntil('the server to drop the stream', () => s.app.hub.streamsOf('ida') === 0);
  await s.publish({ user: 'ida', title: 'too late' });
  await sleep(200);
  t.equal(seen.notifications.length, 0);
  t.same(seen.states, ['connecting', 'connected', 'closed']);
});

t.test('a token is required', async (t) => {
  t.throws(() => new HeraldClient({} as never), TypeError);
});
