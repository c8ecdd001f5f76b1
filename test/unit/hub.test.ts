// The hub on its own: a real in-memory bus feeding it, and connections that record what they are
// handed. Which stream gets which event is decided here and nowhere else (src/stream/hub.ts).
import t, { type Test } from 'tap';
import { MemoryBus } from '../../src/bus/memory.js';
import { Metrics } from '../../src/metrics.js';
import { Hub, type Connection } from '../../src/stream/hub.js';
import type { OutEvent } from '../../src/stream/out-event.js';
import type { Target, UserEvent } from '../../src/types.js';
import { storedNotification as notification } from '../support/notification.js';
import { waitUntil } from '../support/wait.js';

/** A connection that records what the hub hands it; its topics change as a WebSocket's do. */
class Recorder implements Connection {
  readonly delivered: number[] = [];
  readonly userEvents: OutEvent[] = [];
  readonly ephemerals: OutEvent[] = [];
  heartbeats = 0;
  ended = false;
  readonly liveCount = 0;
  readonly countsUnread = true;
  /** The unread counts the hub handed this stream. */
  readonly counts: number[] = [];

  constructor(
    readonly user: string,
    public topics: string[] = [],
  ) {}

  deliver(ev: OutEvent): void {
    this.delivered.push(ev.id!);
  }

  userEvent(ev: OutEvent): void {
    this.userEvents.push(ev);
  }

  unread(count: number): void {
    this.counts.push(count);
  }

  ephemeral(ev: OutEvent): void {
    this.ephemerals.push(ev);
  }

  heartbeat(): void {
    this.heartbeats++;
  }

  end(): void {
    this.ended = true;
  }
}

/** A hub on a memory bus; `publish` routes synchronously, as the embedded deployment does. */
function setup(t: Test, heartbeatMs = 60_000) {
  const bus = new MemoryBus();
  let hub!: Hub;
  const metrics = new Metrics(() => hub.size);
  // Unread counts have their own tests over a real store (test/stream/unread.test.ts).
  hub = new Hub(bus, heartbeatMs, metrics, { store: { unreadCount: async () => 0 }, log: { error: () => {} } });
  t.teardown(() => hub.close());
  return {
    hub,
    bus,
    send: (id: number, target: Target) => void bus.publish({ kind: 'notification', notification: notification(id, target) }),
    userEvent: (e: UserEvent) => void bus.publish(e),
    /** Streams written to by live fan-out so far, as /metrics reports it. */
    liveDelivered: async () => {
      const { values } = await metrics.registry.getSingleMetric('herald_events_delivered_total')!.get();
      return values.find((v) => v.labels.source === 'live')?.value ?? 0;
    },
  };
}

t.test('a direct notification reaches every stream of each listed user, and no one else', async (t) => {
  const { hub, send, liveDelivered } = setup(t);
  const [alice1, alice2, bob, carol] = [new Recorder('alice'), new Recorder('alice', ['deploys']), new Recorder('bob'), new Recorder('carol')];
  for (const c of [alice1, alice2, bob, carol]) hub.add(c);
  t.equal(hub.size, 4);
  t.equal(hub.streamsOf('alice'), 2);
  t.equal(hub.streamsOf('bob'), 1);
  t.equal(hub.streamsOf('dave'), 0, 'a user with no stream');

  send(1, { users: ['alice'] });
  send(2, { users: ['alice', 'bob'] });
  send(3, { users: ['dave'] });
  t.same(alice1.delivered, [1, 2]);
  t.same(alice2.delivered, [1, 2], "a stream's topics do not narrow what is sent to its user");
  t.same(bob.delivered, [2]);
  t.same(carol.delivered, []);
  t.equal(await liveDelivered(), 2 + 3, 'fan-out counts the streams written to');
});

t.test('a topic notification reaches the streams subscribed to it, whoever their user', async (t) => {
  const { hub, send } = setup(t);
  const [a, b, c] = [new Recorder('alice', ['deploys', 'alerts']), new Recorder('bob', ['deploys']), new Recorder('carol', ['alerts'])];
  for (const x of [a, b, c]) hub.add(x);
  send(1, { topic: 'deploys' });
  send(2, { topic: 'alerts' });
  send(3, { topic: 'nobody-listens' });
  t.same(a.delivered, [1, 2]);
  t.same(b.delivered, [1]);
  t.same(c.delivered, [2]);
});

t.test('a broadcast reaches every stream', async (t) => {
  const { hub, send, liveDelivered } = setup(t);
  const streams = [new Recorder('alice'), new Recorder('alice', ['deploys']), new Recorder('bob')];
  for (const c of streams) hub.add(c);
  send(7, { broadcast: true });
  t.same(
    streams.map((c) => c.delivered),
    [[7], [7], [7]],
  );
  t.equal(await liveDelivered(), 3);
});

t.test('an ephemeral event reaches the streams of its topic only, and nothing is counted as a notification', async (t) => {
  const { hub, bus } = setup(t);
  const [a, b] = [new Recorder('alice', ['pusher/1/chat']), new Recorder('bob', ['deploys'])];
  for (const x of [a, b]) hub.add(x);
  void bus.publish({ kind: 'ephemeral', topic: 'pusher/1/chat', event: 'client-typing', data: '{}', exceptSocket: '1.1' });
  t.same(a.ephemerals.map((ev) => ev.payload), [{ kind: 'ephemeral', topic: 'pusher/1/chat', event: 'client-typing', data: '{}', exceptSocket: '1.1' }]);
  t.same(b.ephemerals, []);
  t.same([a.delivered, b.delivered], [[], []]);
  t.equal(hub.newestId, 0, 'no notification id moved');
});

t.test("a user's read and deleted changes reach that user's streams only, as user events", async (t) => {
  const { hub, userEvent } = setup(t);
  const [alice1, alice2, bob] = [new Recorder('alice'), new Recorder('alice', ['deploys']), new Recorder('bob')];
  for (const c of [alice1, alice2, bob]) hub.add(c);
  userEvent({ kind: 'read', user: 'alice', ids: [1, 2] });
  userEvent({ kind: 'read-all', user: 'alice', upTo: 9 });
  userEvent({ kind: 'deleted', user: 'bob', id: 4 });
  userEvent({ kind: 'deleted', user: 'dave', id: 5 });
  for (const c of [alice1, alice2]) {
    t.same(
      c.userEvents.map((e) => [e.event, JSON.parse(e.json)]),
      [
        ['read', { ids: [1, 2] }],
        ['read', { all: true, upTo: 9 }],
      ],
    );
    t.same(c.delivered, [], 'not as notifications');
  }
  t.same(
    bob.userEvents.map((e) => [e.event, e.id, JSON.parse(e.json)]),
    [['deleted', undefined, { id: 4 }]],
  );
});

t.test('a removed stream gets nothing more and leaves no trace in the indexes', async (t) => {
  const { hub, send, liveDelivered } = setup(t);
  const gone = new Recorder('alice', ['deploys']);
  const stays = new Recorder('alice');
  hub.add(gone);
  hub.add(stays);
  hub.remove(gone);
  hub.remove(gone);
  t.equal(hub.size, 1, 'removing twice is harmless');
  t.equal(hub.streamsOf('alice'), 1);
  send(1, { users: ['alice'] });
  send(2, { topic: 'deploys' });
  send(3, { broadcast: true });
  t.same(gone.delivered, []);
  t.same(stays.delivered, [1, 3]);
  t.equal(await liveDelivered(), 2, 'the topic had no stream left');
  hub.remove(stays);
  t.equal(hub.streamsOf('alice'), 0);
  t.equal(hub.size, 0);
});

t.test('topicAdded and topicRemoved re-index an open stream; remove then finds it under its current topics', async (t) => {
  const { hub, send, liveDelivered } = setup(t);
  const c = new Recorder('alice', ['a']);
  hub.add(c);
  c.topics.push('b');
  hub.topicAdded(c, 'b');
  send(1, { topic: 'b' });
  c.topics = c.topics.filter((x) => x !== 'a');
  hub.topicRemoved(c, 'a');
  send(2, { topic: 'a' });
  send(3, { topic: 'b' });
  t.same(c.delivered, [1, 3], 'gets b once added, no longer a once removed');

  hub.remove(c);
  const before = await liveDelivered();
  send(4, { topic: 'b' });
  t.equal(await liveDelivered(), before, 'the added topic no longer holds the removed stream');
  t.same(c.delivered, [1, 3]);
});

t.test('a topic change on a stream that is not in the hub indexes nothing', async (t) => {
  const { hub, send } = setup(t);
  const closed = new Recorder('alice');
  hub.add(closed);
  hub.remove(closed);
  closed.topics.push('late');
  hub.topicAdded(closed, 'late');
  const never = new Recorder('bob', ['late']);
  hub.topicAdded(never, 'late');
  send(1, { topic: 'late' });
  t.same(closed.delivered, [], 'a stream closed before its subscribe was handled');
  t.same(never.delivered, [], 'a stream that never joined');
  t.equal(hub.size, 0);
});

t.test("newestId: the newest id routed or started after, never lower; it is where a stream without Last-Event-ID starts", async (t) => {
  const { hub, send, userEvent } = setup(t);
  t.equal(hub.newestId, 0, 'a fresh hub on an empty store');
  hub.startAfter(10);
  t.equal(hub.newestId, 10, 'what was committed before the hub subscribed');
  hub.startAfter(5);
  t.equal(hub.newestId, 10, 'never moves back');
  send(11, { users: ['nobody-connected'] });
  t.equal(hub.newestId, 11, 'a notification no stream here receives still counts');
  send(12, { topic: 't' });
  send(13, { broadcast: true });
  t.equal(hub.newestId, 13);
  userEvent({ kind: 'read-all', user: 'alice', upTo: 99 });
  t.equal(hub.newestId, 13, 'user events carry no notification id');
  hub.startAfter(12);
  t.equal(hub.newestId, 13);
});

t.test('one heartbeat timer reaches every open stream, and stops with the hub', async (t) => {
  const { hub, bus } = setup(t, 10);
  const streams = [new Recorder('alice'), new Recorder('alice'), new Recorder('bob', ['x'])];
  const removed = new Recorder('carol');
  for (const c of [...streams, removed]) hub.add(c);
  hub.remove(removed);
  await waitUntil('two heartbeats on every stream', () => streams.every((c) => c.heartbeats >= 2), 2000);
  t.equal(removed.heartbeats, 0, 'not a removed stream');

  hub.close();
  t.ok(
    streams.every((c) => c.ended),
    'close ends every stream so its client reconnects',
  );
  const counts = streams.map((c) => c.heartbeats);
  await bus.publish({ kind: 'notification', notification: notification(1, { broadcast: true }) });
  await new Promise((r) => setTimeout(r, 50));
  t.same(
    streams.map((c) => c.heartbeats),
    counts,
    'no heartbeat after close',
  );
  t.same(
    streams.map((c) => c.delivered),
    [[], [], []],
    'no longer listening to the bus',
  );
});
