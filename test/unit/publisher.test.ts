// The Publisher, the domain step of every publish, against the real SQLite store and the real
// in-memory bus: what is announced is committed first, and a bus failure never fails the publish.
import { rmSync } from 'node:fs';
import t, { type Test } from 'tap';
import type { Bus } from '../../src/bus/bus.js';
import { createBus } from '../../src/bus/index.js';
import { loadConfig } from '../../src/config.js';
import { Publisher, type PublishLog, type PublishResult } from '../../src/domain/publisher.js';
import { Metrics } from '../../src/metrics.js';
import { createStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/store.js';
import type { BusMessage, NewNotification, StoredNotification } from '../../src/types.js';
import { tempDir } from '../../support/util.js';

/** A fresh SQLite store and memory bus, closed (and the store's files removed) when `t` ends. */
async function fixture(t: Test) {
  const dataDir = tempDir();
  const config = loadConfig({ HERALD_DATA_DIR: dataDir, HERALD_SQLITE_SYNC: 'normal' });
  const store = await createStore(config.store);
  const bus = await createBus(config.bus, store);
  const announced: BusMessage[] = [];
  bus.subscribe((msg) => announced.push(msg));
  const logged: { obj: unknown; msg: string | undefined }[] = [];
  const log: PublishLog = { error: (obj: unknown, msg?: string) => void logged.push({ obj, msg }) };
  const metrics = new Metrics(() => 0);
  t.teardown(async () => {
    await bus.close();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { store, bus, announced, logged, log, metrics };
}

/** herald_notifications_published_total, by target kind. */
async function published(metrics: Metrics): Promise<Record<string, number>> {
  const counter = await metrics.registry.getSingleMetric('herald_notifications_published_total')!.get();
  return Object.fromEntries(counter.values.map((v) => [String(v.labels.target), v.value]));
}

const toAlice: NewNotification = { title: 'Order shipped', data: { order: 7, carrier: 'post' }, target: { users: ['alice'] } };

/** The notification of a publish that must have created one. */
function created(result: PublishResult): StoredNotification {
  if (result.status !== 'created') throw new Error(`expected created, got ${result.status}`);
  return result.notification;
}

/** The row as the store reads it back, or undefined when it is not committed. */
const committed = async (store: Store, id: number): Promise<StoredNotification | undefined> => (await store.range(id - 1, id))[0];

t.test('a publish is committed, then announced on the bus, then counted', async (t) => {
  const { store, bus, log, metrics } = await fixture(t);
  // A bus that reads the store the moment it is asked to announce: the row must already be there.
  const seenAtAnnounce: (StoredNotification | undefined)[] = [];
  const checking: Bus = {
    publish: async (msg) => {
      if (msg.kind === 'notification') seenAtAnnounce.push(await committed(store, msg.notification.id));
      await bus.publish(msg);
    },
    subscribe: (handler) => bus.subscribe(handler),
    ping: () => bus.ping(),
    close: () => bus.close(),
  };
  const publisher = new Publisher(store, checking, metrics, log);

  const n = created(await publisher.publish(toAlice));
  t.match(n, { title: 'Order shipped', users: ['alice'], data: { order: 7, carrier: 'post' } });
  t.same(seenAtAnnounce, [n], 'announced once, and already committed when announced');
  t.same(await published(metrics), { users: 1 });

  await publisher.publish({ title: 'Deploy', target: { topic: 'deploys' } });
  await publisher.publish({ title: 'Hello all', target: { broadcast: true } });
  t.same(await published(metrics), { users: 1, topic: 1, broadcast: 1 }, 'counted by target kind');
});

t.test('a bus that fails does not fail the publish: it is committed, counted and logged', async (t) => {
  const { store, logged, log, metrics } = await fixture(t);
  const broken: Bus = {
    publish: () => Promise.reject(new Error('bus down')),
    subscribe: () => () => {},
    ping: () => Promise.reject(new Error('bus down')),
    close: async () => {},
  };
  const publisher = new Publisher(store, broken, metrics, log);

  const n = created(await publisher.publish(toAlice));
  t.same(await committed(store, n.id), n, 'the row is committed: catch-up carries it');
  t.same(await published(metrics), { users: 1 });
  t.equal(logged.length, 1);
  t.match(logged[0], { obj: { err: { message: 'bus down' }, id: n.id }, msg: /bus publish failed/ });

  // The caller's logger, when given, is the one told (a request's carries its id).
  const requestLogged: unknown[] = [];
  await publisher.publish(toAlice, undefined, { error: (obj: unknown) => void requestLogged.push(obj) });
  t.equal(requestLogged.length, 1, 'logged to the caller');
  t.equal(logged.length, 1, 'and not to the default logger');
});

t.test('with an Idempotency-Key, a replay and a conflict announce and count nothing', async (t) => {
  const { store, bus, announced, log, metrics } = await fixture(t);
  const publisher = new Publisher(store, bus, metrics, log);
  const key = { publisher: 'key', key: 'order-7' };

  const first = created(await publisher.publish(toAlice, key));
  t.equal(announced.length, 1);

  // The same fields in another order ask for the same notification: the hash is over a canonical form.
  const reordered: NewNotification = { target: { users: ['alice'] }, data: { carrier: 'post', order: 7 }, title: 'Order shipped' };
  t.same(await publisher.publish(reordered, key), { status: 'replayed', notification: first }, 'a replay, with the first result');

  t.same(await publisher.publish({ ...toAlice, title: 'Order cancelled' }, key), { status: 'conflict' }, 'another request: a conflict');

  const other = await publisher.publish(toAlice, { publisher: 'jwt:svc', key: 'order-7' });
  t.equal(other.status, 'created', "keys are per publisher: another's same key is a new publish");

  t.equal(announced.length, 2, 'only the two created publishes were announced');
  t.same(await published(metrics), { users: 2 }, 'only the two created publishes were counted');
});

t.test('without a key, the same request twice is two notifications', async (t) => {
  const { store, bus, announced, log, metrics } = await fixture(t);
  const publisher = new Publisher(store, bus, metrics, log);
  const a = created(await publisher.publish(toAlice));
  const b = created(await publisher.publish(toAlice));
  t.ok(b.id > a.id);
  t.same(announced.map((m) => (m.kind === 'notification' ? m.notification.id : undefined)), [a.id, b.id]);
});
