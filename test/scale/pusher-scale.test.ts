// The Pusher protocol across two instances sharing a real PostgreSQL and a real Redis: events
// published on one reach pusher-js and Echo clients on the other, and presence is one list across
// both, including when an instance stops, gracefully or by kill -9.
import Echo from 'laravel-echo';
import t, { type Test } from 'tap';
import { startBackends } from '../support/backends.js';
import { sleep } from '../../support/util.js';
import { PusherForEcho, app1, authServer, clientOptions, pusherApps, pusherClient, serverSdk, subscribed } from '../support/pusher.js';
import { spawnServer, startServer, type Server } from '../support/server.js';
import { waitUntil } from '../support/wait.js';

type Json = Record<string, unknown>;

const { redis, postgres } = await startBackends(t);

/** Presence refreshes every 2 heartbeats; an instance silent for 3 refreshes is forgotten (1.2 s here). */
const quick = { HERALD_HEARTBEAT_MS: '200' };

async function deployment(): Promise<Record<string, string>> {
  return { HERALD_STORE: await postgres.newDatabase(), HERALD_BUS: redis.url, HERALD_PUSHER_APPS: pusherApps, ...quick };
}

async function instance(t: Pick<Test, 'teardown'>, env: Record<string, string>): Promise<Server> {
  const s = await startServer({ env });
  t.teardown(() => s.close());
  return s;
}

/** An Echo client of `server` whose presence joins record here/joining/leaving. */
function presence(t: Pick<Test, 'teardown'>, server: { url: string }, auth: { url: string }, user: string, room: string) {
  const echo = new Echo({ broadcaster: 'pusher', key: app1.key, Pusher: PusherForEcho, ...clientOptions(server, auth, user) });
  t.teardown(() => echo.disconnect());
  const seen = { here: [] as string[], events: [] as string[] };
  echo
    .join(room)
    .here((users: Json[]) => (seen.here = users.map((u) => String(u.name)).sort()))
    .joining((u: Json) => seen.events.push(`joining ${String(u.name)}`))
    .leaving((u: Json) => seen.events.push(`leaving ${String(u.name)}`));
  return { echo, seen };
}

t.test('published on A, received on B; socket_id exclusion holds across instances', async (t) => {
  const env = await deployment();
  const [a, b] = [await instance(t, env), await instance(t, env)];
  const [c1, c2] = [await pusherClient(b), await pusherClient(b)];
  const got1: unknown[] = [];
  const got2: unknown[] = [];
  (await subscribed(c1, 'orders')).bind('created', (d: unknown) => got1.push(d));
  (await subscribed(c2, 'orders')).bind('created', (d: unknown) => got2.push(d));
  const sdk = serverSdk(a);
  await sdk.trigger('orders', 'created', { n: 1 }, { socket_id: c1.connection.socket_id });
  await sdk.trigger('orders', 'created', { n: 2 });
  await waitUntil('both events on B', () => got1.length === 1 && got2.length === 2);
  t.same(got1, [{ n: 2 }]);
  t.same(got2, [{ n: 1 }, { n: 2 }]);
});

t.test('presence is one list across instances; whispers cross too', async (t) => {
  const env = await deployment();
  const [a, b] = [await instance(t, env), await instance(t, env)];
  const auth = await authServer(a);
  const alice = presence(t, a, auth, 'alice', 'room.1');
  await waitUntil('alice here', () => alice.seen.here.length === 1);
  const bob = presence(t, b, auth, 'bob', 'room.1');
  await waitUntil('bob sees both, alice sees bob join', () => bob.seen.here.length === 2 && alice.seen.events.length === 1);
  t.same(bob.seen.here, ['alice', 'bob']);
  t.same(alice.seen.events, ['joining bob']);
  for (const s of [a, b]) {
    const users = (await (await serverSdk(s).get({ path: '/channels/presence-room.1/users' })).json()) as { users: Json[] };
    t.same(users.users.map((u) => u.id).sort(), ['alice', 'bob'], `the same members asked of ${s === a ? 'A' : 'B'}`);
  }

  const heard: unknown[] = [];
  alice.echo.join('room.1').listenForWhisper('typing', (e: unknown) => heard.push(e));
  bob.echo.join('room.1').whisper('typing', { who: 'bob' });
  await waitUntil('the whisper on A', () => heard.length === 1);
  t.same(heard, [{ who: 'bob' }]);

  bob.echo.leave('room.1');
  await waitUntil('bob leaves', () => alice.seen.events.length === 2);
  t.same(alice.seen.events, ['joining bob', 'leaving bob']);
});

t.test('an instance that stops takes its members with it: at once on a graceful stop, within seconds on kill -9', async (t) => {
  const env = await deployment();
  const a = await instance(t, env);
  const auth = await authServer(a);
  const alice = presence(t, a, auth, 'alice', 'room.2');
  await waitUntil('alice here', () => alice.seen.here.length === 1);

  const graceful = await startServer({ env });
  presence(t, graceful, auth, 'carol', 'room.2');
  await waitUntil('carol joins', () => alice.seen.events.includes('joining carol'));
  const stoppedAt = Date.now();
  await graceful.close();
  await waitUntil('carol leaves', () => alice.seen.events.includes('leaving carol'), 5000);
  t.ok(Date.now() - stoppedAt < 1000, 'announced by the stopping instance');

  const killed = await spawnServer({ ...env, HERALD_SQLITE_SYNC: 'normal' });
  t.teardown(() => killed.stop('SIGKILL'));
  presence(t, killed, auth, 'dave', 'room.2');
  await waitUntil('dave joins', () => alice.seen.events.includes('joining dave'));
  await killed.stop('SIGKILL');
  const killedAt = Date.now();
  await waitUntil('dave leaves', () => alice.seen.events.includes('leaving dave'), 10_000);
  t.ok(Date.now() - killedAt >= 600, 'not at once: nobody said so');
  const users = (await (await serverSdk(a).get({ path: '/channels/presence-room.2/users' })).json()) as { users: Json[] };
  t.same(users.users.map((u) => u.id), ['alice']);
  await sleep(50);
});
