// One stream's catch-up-then-live rule (src/stream/subscription.ts) on its own: a real hub on a
// real in-memory bus, a small fake store whose read the test can hold open, and a sink that records
// what would be written. Whatever interleaves with the store read and the replay, the stream writes
// its resume point first, then every notification after it, in id order, once.
import { deepStrictEqual, ok } from 'node:assert/strict';
// Lets the subscription reach its next await (the store read, or the replay's write).
import { setImmediate as nextTurn } from 'node:timers/promises';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { MemoryBus } from '../../src/bus/memory.js';
import { Metrics } from '../../src/metrics.js';
import type { CatchUp, Store } from '../../src/store/store.js';
import { Hub } from '../../src/stream/hub.js';
import { OutEvent } from '../../src/stream/out-event.js';
import { Subscription, type Sink } from '../../src/stream/subscription.js';
import type { Audience, StoredNotification, Target } from '../../src/types.js';
import { storedNotification } from '../support/notification.js';
import { deferred } from '../support/wait.js';

/** The one read a subscription makes of the store, over rows the test commits; `gate` holds it open. */
class FakeStore implements Pick<Store, 'catchUp' | 'unreadCount'> {
  private rows: StoredNotification[] = [];
  private head = 0;
  private readonly horizons = new Map<string, number>();
  readonly reads: number[] = [];
  gate: Promise<void> | undefined;
  /** Runs right after the snapshot is taken: what it commits, the read does not see. */
  afterRead: (() => void) | undefined;

  commit(n: StoredNotification): void {
    this.rows.push(n);
    this.head = n.id;
  }

  /** Retention removed every row up to `id` that `user` may see. */
  prune(user: string, id: number): void {
    this.rows = this.rows.filter((n) => n.id > id);
    this.horizons.set(user, id);
  }

  /** The first count a stream sends is tested over a real store (test/stream/unread.test.ts). */
  async unreadCount(): Promise<number> {
    return 0;
  }

  async catchUp(audience: Audience, afterId: number, limit: number): Promise<CatchUp> {
    this.reads.push(afterId);
    // The snapshot is taken once the gate opens: what was committed while it was held is in it.
    await this.gate;
    const visible = (n: StoredNotification) =>
      n.broadcast || (n.users?.includes(audience.user) ?? false) || (n.topic !== null && audience.topics.includes(n.topic));
    const snapshot = {
      head: this.head,
      missed: this.rows.filter((n) => n.id > afterId && visible(n)).slice(0, limit),
      prunedUpTo: this.horizons.get(audience.user) ?? 0,
    };
    this.afterRead?.();
    return snapshot;
  }
}

/** What the stream wrote, one line per call, e.g. `resume 2`, `replay 3,4`, `notification 5`, `reload 5 pruned`. */
class RecordingSink implements Sink {
  readonly carriesUnread = true;
  readonly log: string[] = [];
  /** While set, a replay's write is in progress until it resolves. */
  gate: Promise<void> | undefined;
  /** Resolves when a replay starts being written. */
  readonly replaying = deferred();

  send(ev: OutEvent): void {
    if (ev.event === 'unread') return;
    const reason = ev.event === 'reload' ? ` ${(JSON.parse(ev.json) as { reason: string }).reason}` : '';
    this.log.push(`${ev.event} ${ev.id ?? ''}${reason}`.trimEnd());
  }

  async sendMany(evs: readonly OutEvent[]): Promise<void> {
    if (evs.every((ev) => ev.event === 'unread')) return;
    this.log.push(`replay ${evs.map((e) => e.id).join(',')}`);
    this.replaying.resolve();
    await this.gate;
  }

  resumePoint(id: number): void {
    this.log.push(`resume ${id}`);
  }

  ephemeral(ev: OutEvent): void {
    this.log.push(`ephemeral ${(ev.payload as { event: string }).event}`);
  }

  heartbeat(): void {
    this.log.push('heartbeat');
  }

  end(): void {
    this.log.push('end');
  }

  abort(): void {
    this.log.push('abort');
  }

  /** The resume point and every notification id written after it, in order (replays included). */
  written(): { resume: number | undefined; ids: number[] } {
    const resume = this.log[0]?.startsWith('resume ') ? Number(this.log[0].slice(7)) : undefined;
    const ids = this.log.flatMap((line) => {
      const [kind, rest] = line.split(' ');
      if (kind === 'replay') return rest!.split(',').map(Number);
      return kind === 'notification' ? [Number(rest)] : [];
    });
    return { resume, ids };
  }
}

/** A hub on a memory bus over the fake store; `publish` commits then routes, as POST /notifications does. */
// The open-streams gauge is read only when /metrics is scraped, which these tests do not do.
function setup(t: Test, catchupLimit = 100, metrics = new Metrics(() => 0)) {
  const bus = new MemoryBus();
  const store = new FakeStore();
  const hub = new Hub(bus, 60_000, metrics, { store, log: { error: () => {} } });
  t.teardown(() => hub.close());
  const commit = (id: number, target?: Target) => {
    const n = storedNotification(id, target);
    store.commit(n);
    return n;
  };
  return {
    hub,
    store,
    commit,
    publish: (id: number, target?: Target) => void bus.publish({ kind: 'notification', notification: commit(id, target) }),
    /** Routes an already committed notification: the bus catching up with the store. */
    route: (n: StoredNotification) => void bus.publish({ kind: 'notification', notification: n }),
    stream: (user = 'alice', topics: string[] = []) => {
      const sink = new RecordingSink();
      const sub = new Subscription({ replay: store, hub, catchupLimit, metrics }, user, topics, sink);
      return { sub, sink };
    },
    reloads: async (reason: string) => {
      const { values } = await metrics.registry.getSingleMetric('herald_catchup_reloads_total')!.get();
      return values.find((v) => v.labels.reason === reason)?.value ?? 0;
    },
  };
}

t.test('an ephemeral event (a Pusher client event, a presence change) during catch-up waits for the resume point and the replay', async (t) => {
  const { hub, store, publish, stream } = setup(t);
  for (const id of [1, 2]) publish(id);
  const { sub, sink } = stream('alice', ['pusher/1/chat']);
  const read = deferred();
  store.gate = read.promise;
  const started = sub.start(0);
  await nextTurn();
  hub.ephemeral('pusher/1/chat', OutEvent.ephemeral({ topic: 'pusher/1/chat', event: 'client-typing', data: '{}' }));
  hub.ephemeral('pusher/1/other', OutEvent.ephemeral({ topic: 'pusher/1/other', event: 'client-elsewhere', data: '{}' }));
  t.same(sink.log, [], 'held while the store is read');
  read.resolve();
  await started;
  t.same(sink.log, ['resume 0', 'replay 1,2', 'ephemeral client-typing'], 'after the replay; another topic’s never');
  hub.ephemeral('pusher/1/chat', OutEvent.ephemeral({ topic: 'pusher/1/chat', event: 'client-live', data: '{}' }));
  t.equal(sink.log.at(-1), 'ephemeral client-live', 'live at once afterwards');
});

t.test('live events that arrive during a slow catch-up are held, then written after the replay, in order', async (t) => {
  const { store, publish, stream } = setup(t);
  for (const id of [1, 2, 3]) publish(id);
  const { sub, sink } = stream();
  const read = deferred();
  store.gate = read.promise;
  store.afterRead = () => publish(4);
  const write = deferred();
  sink.gate = write.promise;
  const started = sub.start(1);
  await nextTurn();
  t.same(store.reads, [1], 'the stream joined the hub, then asked for what came after its Last-Event-ID');
  t.same(sink.log, [], 'nothing, not even the resume point, before the store has answered');
  read.resolve();
  await sink.replaying.promise;
  publish(5);
  t.same(sink.log, ['resume 1', 'replay 2,3'], 'nothing live while the replay is being written');
  write.resolve();
  await started;
  publish(6);
  t.same(sink.log, ['resume 1', 'replay 2,3', 'notification 4', 'notification 5', 'notification 6'], 'committed after the store read: live, after the replay');
});

t.test('an event both replayed and held is written once', async (t) => {
  const { store, publish, stream } = setup(t);
  for (const id of [1, 2]) publish(id);
  const { sub, sink } = stream();
  const read = deferred();
  store.gate = read.promise;
  const started = sub.start(1);
  await nextTurn();
  // Committed and routed while the store read is pending, before its snapshot: in both.
  publish(3);
  publish(4);
  read.resolve();
  await started;
  publish(5);
  t.same(sink.log, ['resume 1', 'replay 2,3,4', 'notification 5']);
});

t.test('a resume at the head reads the store once, writes its resume point and filters held events', async (t) => {
  const { store, publish, route, commit, stream } = setup(t);
  for (const id of [1, 2, 3]) publish(id);
  // Committed, but still on its way through the bus when the stream opens.
  const late = commit(4);
  const { sub, sink } = stream();
  const read = deferred();
  store.gate = read.promise;
  const started = sub.start(4);
  await nextTurn();
  route(late);
  read.resolve();
  await started;
  publish(5);
  t.same(sink.log, ['resume 4', 'notification 5'], 'id 4 is not written twice');
  t.same(store.reads, [4]);
});

t.test('without Last-Event-ID a stream starts at the hub newest id, not the store head, and never reads the store', async (t) => {
  const { hub, store, publish, route, commit, stream } = setup(t);
  hub.startAfter(2);
  store.commit(storedNotification(1));
  store.commit(storedNotification(2));
  publish(3);
  // The store already has 4; the bus has not routed it yet.
  const late = commit(4);
  const { sub, sink } = stream();
  await sub.start(undefined);
  t.same(sink.log, ['resume 3']);
  route(late);
  publish(5);
  t.same(sink.log, ['resume 3', 'notification 4', 'notification 5'], 'no gap: 4 comes live');
  t.same(store.reads, [], 'its past is its history, not a replay');
});

t.test('a stream that joins before its resume point is known (WebSocket) holds what arrives meanwhile', async (t) => {
  const { publish, stream } = setup(t);
  for (const id of [1, 2]) publish(id);
  const { sub, sink } = stream();
  sub.join();
  publish(3);
  publish(4);
  t.same(sink.log, [], 'nothing before the resume point');
  await sub.start(undefined);
  t.same(sink.log, ['resume 2', 'notification 3', 'notification 4']);
});

t.test('reload, ahead-of-server: a Last-Event-ID above the store head resumes at the head', async (t) => {
  const { publish, stream, reloads } = setup(t);
  for (const id of [1, 2, 3]) publish(id);
  const { sub, sink } = stream();
  await sub.start(9);
  publish(4);
  t.same(sink.log, ['resume 3', 'reload 3 ahead-of-server', 'notification 4']);
  t.equal(await reloads('ahead-of-server'), 1);
});

t.test('reload, pruned: retention removed something after the Last-Event-ID that the client never saw', async (t) => {
  const { store, publish, stream, reloads } = setup(t);
  for (const id of [1, 2, 3, 4, 5]) publish(id);
  store.prune('alice', 3);
  const behind = stream();
  await behind.sub.start(2);
  publish(6);
  t.same(behind.sink.log, ['resume 5', 'reload 5 pruned', 'notification 6']);
  t.equal(await reloads('pruned'), 1);

  const atHorizon = stream();
  await atHorizon.sub.start(3);
  t.same(atHorizon.sink.log, ['resume 3', 'replay 4,5,6'], 'a client that saw everything up to the horizon lost nothing');
});

t.test('reload, catchup-limit: more missed than the limit resumes at the head; exactly the limit is replayed', async (t) => {
  const { publish, stream, reloads } = setup(t, 3);
  for (const id of [1, 2, 3, 4, 5]) publish(id);
  const tooFar = stream();
  await tooFar.sub.start(1);
  t.same(tooFar.sink.log, ['resume 5', 'reload 5 catchup-limit']);
  t.equal(await reloads('catchup-limit'), 1);

  const atLimit = stream();
  await atLimit.sub.start(2);
  t.same(atLimit.sink.log, ['resume 2', 'replay 3,4,5']);
});

t.test('a reload resumes at the head the store read saw, and events held meanwhile never move it back', async (t) => {
  const { store, publish, stream } = setup(t);
  for (const id of [1, 2, 3]) publish(id);
  store.prune('alice', 2);
  const { sub, sink } = stream();
  const read = deferred();
  store.gate = read.promise;
  store.afterRead = () => publish(5);
  const started = sub.start(1);
  await nextTurn();
  // Before the snapshot: the head it reads. 5 is committed just after it.
  publish(4);
  read.resolve();
  await started;
  t.same(sink.log, ['resume 4', 'reload 4 pruned', 'notification 5']);
});

t.test('too many live events held during catch-up abort the stream; nothing is written after', async (t) => {
  const { hub, store, publish, stream } = setup(t, 3);
  publish(1);
  const { sub, sink } = stream();
  const read = deferred();
  store.gate = read.promise;
  const started = sub.start(1);
  await nextTurn();
  for (const id of [2, 3, 4]) publish(id);
  t.same(sink.log, [], 'up to the catch-up limit is held');
  publish(5);
  t.same(sink.log, ['abort'], 'one more drops the client, which resumes by id');
  t.equal(hub.size, 0, 'and leaves the hub');
  read.resolve();
  await started;
  publish(6);
  t.same(sink.log, ['abort']);
});

t.test('the held bound also applies while the replay is being written', async (t) => {
  const { store, publish, stream } = setup(t, 3);
  for (const id of [1, 2, 3]) publish(id);
  const { sub, sink } = stream();
  const write = deferred();
  sink.gate = write.promise;
  const started = sub.start(1);
  await sink.replaying.promise;
  for (const id of [4, 5, 6, 7]) publish(id);
  write.resolve();
  await started;
  t.same(sink.log, ['resume 1', 'replay 2,3', 'abort']);
  t.same(store.reads, [1]);
});

t.test('a failed store read closes the stream and rejects, having written nothing', async (t) => {
  const { hub, store, publish, stream } = setup(t);
  publish(1);
  const { sub, sink } = stream();
  store.gate = Promise.reject(new Error('store unavailable'));
  await t.rejects(sub.start(0), /store unavailable/);
  t.equal(hub.size, 0);
  publish(2);
  t.same(sink.log, []);
});

t.test('end during catch-up: the sink is ended once and nothing else is written', async (t) => {
  const { hub, store, publish, stream } = setup(t);
  publish(1);
  const { sub, sink } = stream();
  const read = deferred();
  store.gate = read.promise;
  const started = sub.start(0);
  await nextTurn();
  sub.end();
  sub.end();
  read.resolve();
  await started;
  publish(2);
  t.same(sink.log, ['end']);
  t.equal(hub.size, 0);
});

t.test('subscribe and unsubscribe change which topic events reach a live stream', async (t) => {
  const { publish, stream } = setup(t);
  const { sub, sink } = stream('alice', ['a']);
  await sub.start(undefined);
  publish(1, { topic: 'a' });
  sub.subscribe('b');
  sub.subscribe('b');
  publish(2, { topic: 'b' });
  sub.unsubscribe('a');
  sub.unsubscribe('a');
  publish(3, { topic: 'a' });
  publish(4, { topic: 'b' });
  t.same(sub.topics, ['b']);
  t.same(sink.log, ['resume 0', 'notification 1', 'notification 2', 'notification 4']);
  sub.close();
  publish(5, { topic: 'b' });
  t.same(sink.log.length, 4, 'closed: gone from the topic index');
});

/**
 * Any interleaving: notifications committed before the stream opens, while its store read is held,
 * while its replay is being written, and after it is live; any Last-Event-ID (none, behind, at the
 * head, ahead), a pruned horizon and a catch-up limit. The stream writes its resume point first, then
 * exactly the notifications after it, in id order, once; or it reloads at the head the read saw, or
 * it is aborted when more arrived during its catch-up than the limit.
 */
t.test('property: resume point first, then every later id once and in order, whatever interleaves', async (t) => {
  const metrics = new Metrics(() => 0);
  const scenario = fc.record({
    before: fc.integer({ min: 0, max: 6 }),
    phases: fc.array(fc.constantFrom(1, 2, 3), { maxLength: 8 }).map((p) => p.sort((a, b) => a - b)),
    lastId: fc.option(fc.integer({ min: 0, max: 10 }), { nil: undefined }),
    prunedTo: fc.integer({ min: 0, max: 3 }),
    limit: fc.integer({ min: 1, max: 10 }),
  });
  await fc.assert(
    fc.asyncProperty(scenario, async ({ before, phases, lastId, prunedTo, limit }) => {
      const { hub, store, publish, stream } = setup(t, limit, metrics);
      let next = 1;
      for (; next <= before; next++) publish(next);
      const horizon = Math.min(prunedTo, before);
      store.prune('alice', horizon);
      const { sub, sink } = stream();
      const read = deferred();
      const write = deferred();
      store.gate = read.promise;
      sink.gate = write.promise;
      const started = sub.start(lastId);
      await nextTurn();
      const during = (phase: number) => phases.filter((p) => p === phase).forEach(() => publish(next++));
      during(1);
      read.resolve();
      await Promise.race([started, sink.replaying.promise]);
      during(2);
      write.resolve();
      await started;
      during(3);
      const log = [...sink.log];
      hub.close();

      // The rules, stated once more as the model this interleaving must match.
      const count = (phase: number) => phases.filter((p) => p === phase).length;
      const head = before + count(1);
      const last = next - 1;
      const span = (from: number, to: number) => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + 1 + i);
      let expected: string[];
      if (lastId === undefined) {
        expected = [`resume ${before}`, ...span(before, last).map((id) => `notification ${id}`)];
      } else {
        const reason = lastId > head ? 'ahead-of-server' : lastId < horizon ? 'pruned' : head - lastId > limit ? 'catchup-limit' : undefined;
        const replay = reason === undefined && head > lastId;
        if (count(1) > limit) expected = ['abort'];
        else if (replay && count(1) + count(2) > limit) expected = [`resume ${lastId}`, `replay ${span(lastId, head).join(',')}`, 'abort'];
        else if (reason) expected = [`resume ${head}`, `reload ${head} ${reason}`, ...span(head, last).map((id) => `notification ${id}`)];
        else expected = [`resume ${lastId}`, ...(replay ? [`replay ${span(lastId, head).join(',')}`] : []), ...span(head, last).map((id) => `notification ${id}`)];
      }
      deepStrictEqual(log, expected);
      // Stated apart from the model: ids only increase, and none is at or below the resume point.
      const { resume, ids } = sink.written();
      if (log[0] !== 'abort') ok(ids.every((id, i) => id > (i === 0 ? resume! : ids[i - 1]!)), log.join('; '));
    }),
    { numRuns: 300 },
  );
  t.pass('300 interleavings');
});

t.test("live events routed before the user's preferences are loaded are held, and muted ones dropped", async (t) => {
  const bus = new MemoryBus();
  const store = new FakeStore();
  const metrics = new Metrics(() => 0);
  const loaded = deferred();
  const prefs = { push: 'offline' as const, quietHours: null, types: { chat: { inapp: false } }, topics: {} };
  const counts = { store: store as unknown as Store, log: { error: () => {} } };
  const hub = new Hub(bus, 60_000, metrics, counts, undefined, { load: async () => (await loaded.promise, prefs), onError: () => {} });
  t.teardown(() => hub.close());
  const sink = new RecordingSink();
  const sub = new Subscription({ replay: store, hub, catchupLimit: 100, metrics }, 'alice', [], sink);
  const route = (id: number, type: string | null) => void bus.publish({ kind: 'notification', notification: { ...storedNotification(id), type } });
  sub.join();
  const started = sub.start(undefined);
  route(1, 'chat');
  route(2, 'other');
  await nextTurn();
  deepStrictEqual(sink.log, ['resume 0'], 'nothing written while the preferences are read');
  loaded.resolve();
  await started;
  route(3, 'chat');
  route(4, null);
  await nextTurn();
  deepStrictEqual(sink.written(), { resume: 0, ids: [2, 4] }, 'the muted ones, held or live, are not written');
});
