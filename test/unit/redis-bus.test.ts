// The Redis bus's gap repair (src/bus/redis.ts) against a real throwaway Redis and a small fake
// store: messages are put on the channel by hand, lost, late, duplicated or out of order, and the
// bus must hand its subscribers every notification in id order, exactly once, reading what it
// missed from the store by id range. The repair lives in the bus's private methods, so it is driven
// through Redis rather than called directly.
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import type { BusLogger } from '../../src/bus/bus.js';
import { RedisBus } from '../../src/bus/redis.js';
import type { Store } from '../../src/store/store.js';
import type { BusMessage, StoredNotification } from '../../src/types.js';
import { startRedis, type RedisServer } from '../../support/backends.js';
import { storedNotification as notification } from '../support/notification.js';
import { deferred, waitUntil } from '../support/wait.js';

let redis: RedisServer;
let raw: Redis;
t.before(async () => {
  redis = await startRedis();
  raw = new Redis(redis.url);
  // The last test restarts Redis under this connection too; it reconnects by itself.
  raw.on('error', () => {});
});
t.teardown(async () => {
  raw?.disconnect();
  await redis?.stop();
});

const ids = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** The two reads the bus makes of the store; commits, failures and slow reads are set by the test. */
class FakeStore implements Pick<Store, 'lastId' | 'range'> {
  private readonly rows = new Map<number, StoredNotification>();
  head = 0;
  lastIdCalls = 0;
  readonly ranges: [number, number][] = [];
  /** The next `range` call rejects with this, once. */
  failNext: Error | undefined;
  /** While set, `range` waits for it. */
  gate: Promise<void> | undefined;

  /** Commits these ids (a missing id is one retention removed, or never had a row) and moves the head. */
  commit(committed: number[], head = Math.max(this.head, ...committed)): void {
    for (const id of committed) this.rows.set(id, notification(id));
    this.head = head;
  }

  async lastId(): Promise<number> {
    this.lastIdCalls++;
    return this.head;
  }

  async range(afterId: number, upTo: number): Promise<StoredNotification[]> {
    this.ranges.push([afterId, upTo]);
    await this.gate;
    const err = this.failNext;
    this.failNext = undefined;
    if (err) throw err;
    return [...this.rows.values()].filter((n) => n.id > afterId && n.id <= upTo).sort((a, b) => a.id - b.id);
  }
}

let channels = 0;

/**
 * A bus on its own channel over `store`, recording what it hands its subscriber and what it logs.
 * The periodic store check is off unless `resyncMs` is given, so a test sees what messages alone do.
 */
async function openBus(t: Test, store: FakeStore, resyncMs = 3_600_000) {
  const channel = `herald-unit-${process.pid}-${++channels}`;
  // RedisBus reads the store only through lastId and range (the rest of Store is never called).
  const bus = await RedisBus.open(redis.url, store as unknown as Store, resyncMs, channel);
  t.teardown(() => bus.close());
  const logged: string[] = [];
  const log: BusLogger = { warn: (_o, msg) => logged.push(msg), error: (_o, msg) => logged.push(msg) };
  bus.useLogger(log);
  const got: BusMessage[] = [];
  bus.subscribe((m) => got.push(m));
  // Opening reads the store's head, then queues a resync that reads it again: let that finish before
  // the test commits anything, so what the test sees comes from its own messages.
  await waitUntil('the first resync', () => store.lastIdCalls >= 2, 1000);
  await nextTurn();
  return {
    bus,
    logged,
    got,
    /** Notification ids handed to the subscriber, in order. */
    delivered: () => got.flatMap((m) => (m.kind === 'notification' ? [m.notification.id] : [])),
    /** Puts a message on the channel as another instance would (a string goes as it is). */
    send: (m: BusMessage | string) => raw.publish(channel, typeof m === 'string' ? m : JSON.stringify(m)),
    note: (id: number): BusMessage => ({ kind: 'notification', notification: notification(id) }),
  };
}

t.test('messages in id order are delivered as they come, without reading the store', async (t) => {
  const store = new FakeStore();
  const { delivered, send, note } = await openBus(t, store);
  store.commit([1, 2, 3]);
  for (const id of [1, 2, 3]) await send(note(id));
  await waitUntil('three notifications', () => delivered().length === 3, 2000);
  t.same(delivered(), [1, 2, 3]);
  t.same(store.ranges, [], 'no gap, no read');
});

t.test('a message past the next id first pulls the missing range from the store; late and duplicate ones are dropped', async (t) => {
  const store = new FakeStore();
  const { delivered, send, note } = await openBus(t, store);
  store.commit(ids(1, 6));
  await send(note(1));
  await send(note(5));
  await send(note(3));
  await send(note(5));
  await send(note(1));
  await send(note(6));
  await waitUntil('id 6', () => delivered().includes(6), 2000);
  t.same(delivered(), [1, 2, 3, 4, 5, 6], 'every id once, in order');
  t.same(store.ranges, [[1, 4]], 'exactly the ids between the last delivered and the message');
});

t.test('the bus starts after the store head: nothing committed before it opened is delivered', async (t) => {
  const store = new FakeStore();
  store.commit(ids(1, 7));
  const { delivered, send, note } = await openBus(t, store);
  store.commit([8]);
  await send(note(7));
  await send(note(8));
  await waitUntil('id 8', () => delivered().includes(8), 2000);
  t.same(delivered(), [8]);
  t.same(store.ranges, []);
});

t.test('a long gap is read in chunks of 1000 ids; ids with no row are passed over, not waited for', async (t) => {
  const store = new FakeStore();
  const { delivered, send, note } = await openBus(t, store);
  const pruned = new Set(ids(500, 599));
  store.commit(ids(1, 2501).filter((id) => !pruned.has(id)));
  await send(note(2501));
  await waitUntil('id 2501', () => delivered().includes(2501), 2000);
  t.same(store.ranges, [
    [0, 1000],
    [1000, 2000],
    [2000, 2500],
  ]);
  t.same(
    delivered(),
    ids(1, 2501).filter((id) => !pruned.has(id)),
  );
});

t.test('a notification whose message never reached Redis is delivered by the periodic store check', async (t) => {
  const store = new FakeStore();
  const { delivered } = await openBus(t, store, 50);
  store.commit([1, 2, 3]);
  await waitUntil('ids 1-3 from the store alone', () => delivered().length === 3, 2000);
  t.same(delivered(), [1, 2, 3]);
  t.same(store.ranges.at(-1), [0, 3]);
});

t.test('a failed store read skips nothing: the next message reads the same range again', async (t) => {
  const store = new FakeStore();
  const { delivered, logged, send, note } = await openBus(t, store);
  store.commit(ids(1, 5));
  store.failNext = new Error('store unavailable');
  await send(note(3));
  await waitUntil('the failure to be logged', () => logged.length > 0, 2000);
  t.same(delivered(), [], 'neither the range nor the message that revealed it');
  t.match(logged, [/reading missed notifications from the store failed/]);
  await send(note(5));
  await waitUntil('id 5', () => delivered().includes(5), 2000);
  t.same(delivered(), [1, 2, 3, 4, 5]);
  t.same(store.ranges, [
    [0, 2],
    [0, 4],
  ]);
});

t.test('what arrives during a repair, user events included, waits for it and is then handled in arrival order', async (t) => {
  const store = new FakeStore();
  const { got, send, note } = await openBus(t, store);
  store.commit(ids(1, 6));
  const read = deferred();
  store.gate = read.promise;
  await send(note(4));
  await waitUntil('the repair to start', () => store.ranges.length === 1, 2000);
  await send({ kind: 'read', user: 'alice', ids: [2] });
  await send(note(6));
  await send(note(5));
  // Arrival of a later message proves the ones before it reached the bus.
  await send({ kind: 'deleted', user: 'alice', id: 1 });
  await new Promise((r) => setTimeout(r, 100));
  t.same(got, [], 'nothing while the store read is in progress');
  read.resolve();
  await waitUntil('the deleted event', () => got.some((m) => m.kind === 'deleted'), 2000);
  t.same(
    got.map((m) => (m.kind === 'notification' ? m.notification.id : m.kind)),
    [1, 2, 3, 4, 'read', 5, 6, 'deleted'],
    'the repair, then each message in turn: 6 repairs 5 first, and the late 5 is dropped',
  );
  t.same(store.ranges, [
    [0, 3],
    [4, 5],
  ]);
});

t.test('a message that is not JSON is logged and ignored; the bus keeps going', async (t) => {
  const store = new FakeStore();
  const { delivered, logged, send, note } = await openBus(t, store);
  store.commit([1]);
  await send('not json {');
  await send(note(1));
  await waitUntil('id 1', () => delivered().includes(1), 2000);
  t.same(logged, ['ignoring a message that is not JSON on the bus channel']);
});

t.test('after Redis comes back, the bus re-reads from the store what was published while it was down', async (t) => {
  const store = new FakeStore();
  const { delivered, logged, send, note } = await openBus(t, store);
  store.commit([1]);
  await send(note(1));
  await waitUntil('id 1', () => delivered().includes(1), 2000);
  await redis.kill();
  // Committed while Redis was down: their messages were never published.
  store.commit([2, 3]);
  await redis.start();
  await waitUntil('ids 2-3 after the reconnect', () => delivered().length === 3, 5000);
  t.same(delivered(), [1, 2, 3]);
  t.ok(logged.includes('redis reconnected; re-reading what was published meanwhile from the store'));
});
