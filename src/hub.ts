import type { Bus } from './bus/bus.js';
import { OutEvent } from './events.js';
import type { BusMessage } from './types.js';

/** One open stream (SSE or WebSocket) as the hub sees it. */
export interface Connection {
  readonly user: string;
  readonly topics: readonly string[];
  /** A live notification routed to this stream, in increasing id order. */
  deliver(ev: OutEvent): void;
  /** A read/deleted change of this stream's user, from any of their tabs on any instance. */
  userEvent(ev: OutEvent): void;
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
  private readonly unsubscribe: () => void;
  // One timer for every stream rather than one each: at tens of thousands of streams, timers add up.
  private readonly heartbeatTimer: NodeJS.Timeout;

  constructor(bus: Bus, heartbeatMs: number) {
    this.unsubscribe = bus.subscribe((msg) => this.route(msg));
    this.heartbeatTimer = setInterval(() => {
      for (const c of this.all) c.heartbeat();
    }, heartbeatMs);
    this.heartbeatTimer.unref();
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

  /** Open streams of one user on this instance. */
  streamsOf(user: string): number {
    return this.byUser.get(user)?.size ?? 0;
  }

  get size(): number {
    return this.all.size;
  }

  private route(msg: BusMessage): void {
    if (msg.kind !== 'notification') {
      const set = this.byUser.get(msg.user);
      if (!set) return;
      const ev = OutEvent.user(msg);
      for (const c of set) c.userEvent(ev);
      return;
    }
    const n = msg.notification;
    const ev = OutEvent.notification(n);
    if (n.broadcast) {
      for (const c of this.all) c.deliver(ev);
    } else if (n.topic !== null) {
      const set = this.byTopic.get(n.topic);
      if (set) for (const c of set) c.deliver(ev);
    } else if (n.users) {
      for (const u of n.users) {
        const set = this.byUser.get(u);
        if (set) for (const c of set) c.deliver(ev);
      }
    }
  }

  /** Ends every stream (shutdown) and stops listening to the bus. */
  close(): void {
    this.unsubscribe();
    clearInterval(this.heartbeatTimer);
    for (const c of [...this.all]) c.end();
  }
}
