import type { Bus } from '../bus/bus.js';
import { OutEvent } from './out-event.js';
import type { Metrics } from '../metrics.js';
import type { BusMessage, StoredNotification } from '../types.js';

/** One open stream (SSE or WebSocket) as the hub sees it. */
export interface Connection {
  readonly user: string;
  readonly topics: readonly string[];
  /** A live notification routed to this stream, in increasing id order. */
  deliver(ev: OutEvent): void;
  /** A read/deleted change of this stream's user, from any of their tabs on any instance. */
  userEvent(ev: OutEvent): void;
  /** An event of one of this stream's topics that is not stored (Pusher client events, presence changes). */
  ephemeral(ev: OutEvent): void;
  heartbeat(): void;
  /** Closes the stream so the client reconnects (elsewhere, on shutdown). */
  end(): void;
}

function addTo<K>(map: Map<K, Set<Connection>>, key: K, c: Connection): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(c);
}

function removeFrom<K>(map: Map<K, Set<Connection>>, key: K, c: Connection): void {
  const set = map.get(key);
  if (set && set.delete(c) && set.size === 0) map.delete(key);
}

/**
 * This instance's open streams, indexed by user and topic, fed by the bus. The one fan-out path
 * for every transport: targeting lives here and nowhere else.
 */
export class Hub {
  private readonly all = new Set<Connection>();
  private readonly byUser = new Map<string, Set<Connection>>();
  private readonly byTopic = new Map<string, Set<Connection>>();
  private newest = 0;
  private readonly unsubscribe: () => void;
  // One timer for every stream rather than one each: at tens of thousands of streams, timers add up.
  private readonly heartbeatTimer: NodeJS.Timeout;

  constructor(
    bus: Bus,
    heartbeatMs: number,
    private readonly metrics: Metrics,
  ) {
    this.unsubscribe = bus.subscribe((msg) => this.route(msg));
    this.heartbeatTimer = setInterval(() => {
      for (const c of this.all) c.heartbeat();
    }, heartbeatMs);
    this.heartbeatTimer.unref();
  }

  /**
   * The newest notification id routed here, or committed before this hub started (see `startAfter`).
   * The bus routes notifications in increasing id order, so a stream that joins now gets every one
   * above this id and none at or below it: exactly where a stream without a resume point starts. The
   * store's newest id would not do: it may count a notification still on its way through the bus,
   * which such a stream would then never get.
   */
  get newestId(): number {
    return this.newest;
  }

  /** Notifications up to `id` were committed before this hub subscribed to the bus: none is routed here. */
  startAfter(id: number): void {
    if (id > this.newest) this.newest = id;
  }

  add(c: Connection): void {
    this.all.add(c);
    addTo(this.byUser, c.user, c);
    for (const t of c.topics) addTo(this.byTopic, t, c);
  }

  remove(c: Connection): void {
    if (!this.all.delete(c)) return;
    removeFrom(this.byUser, c.user, c);
    for (const t of c.topics) removeFrom(this.byTopic, t, c);
  }

  /**
   * Re-indexes an open connection whose topics changed (a WebSocket subscribe/unsubscribe): call it
   * after `c.topics` gained or lost `topic`, so that `remove` later finds the connection where it is.
   */
  topicAdded(c: Connection, topic: string): void {
    if (this.all.has(c)) addTo(this.byTopic, topic, c);
  }

  topicRemoved(c: Connection, topic: string): void {
    if (this.all.has(c)) removeFrom(this.byTopic, topic, c);
  }

  /** Open streams of one topic on this instance. */
  streamsOn(topic: string): number {
    return this.byTopic.get(topic)?.size ?? 0;
  }

  /** The topics starting with `prefix` that have open streams on this instance, with how many each. */
  *topicsUnder(prefix: string): Iterable<[string, number]> {
    for (const [topic, set] of this.byTopic) if (topic.startsWith(prefix)) yield [topic, set.size];
  }

  /** Open streams of one user on this instance. */
  streamsOf(user: string): number {
    return this.byUser.get(user)?.size ?? 0;
  }

  get size(): number {
    return this.all.size;
  }

  /** An event not stored to this instance's streams of `topic`: from the bus, or from the presence registry. */
  ephemeral(topic: string, ev: OutEvent): void {
    const set = this.byTopic.get(topic);
    if (set) for (const c of set) c.ephemeral(ev);
  }

  private route(msg: BusMessage): void {
    switch (msg.kind) {
      case 'notification':
        return this.routeNotification(msg.notification, msg.exceptSocket);
      case 'read':
      case 'read-all':
      case 'deleted': {
        const set = this.byUser.get(msg.user);
        if (!set) return;
        const ev = OutEvent.user(msg);
        for (const c of set) c.userEvent(ev);
        return;
      }
      case 'ephemeral':
        return this.ephemeral(msg.topic, OutEvent.ephemeral(msg));
      default:
      // Presence bookkeeping: the presence registry's, which tells the hub what to deliver.
    }
  }

  private routeNotification(n: StoredNotification, exceptSocket: string | undefined): void {
    if (n.id > this.newest) this.newest = n.id;
    const ev = OutEvent.notification(n, exceptSocket);
    let streams = 0;
    if (n.broadcast) {
      for (const c of this.all) c.deliver(ev);
      streams = this.all.size;
    } else if (n.topic !== null) {
      const set = this.byTopic.get(n.topic);
      if (set) for (const c of set) c.deliver(ev);
      streams = set?.size ?? 0;
    } else if (n.users) {
      for (const u of n.users) {
        const set = this.byUser.get(u);
        if (set) for (const c of set) c.deliver(ev);
        streams += set?.size ?? 0;
      }
    }
    this.metrics.fannedOut(streams, n.createdAt);
  }

  /** Ends every stream (shutdown) and stops listening to the bus. */
  close(): void {
    this.unsubscribe();
    clearInterval(this.heartbeatTimer);
    for (const c of [...this.all]) c.end();
  }
}
