import type { FastifyBaseLogger } from 'fastify';
import type { Bus } from '../bus/bus.js';
import { OutEvent } from './out-event.js';
import type { Metrics } from '../metrics.js';
import { inappMutes, MuteIndex } from '../domain/preferences.js';
import type { Store } from '../store/store.js';
import type { Audience, BusMessage, Preferences, StoredNotification, Target } from '../types.js';

/** What the hub reads unread counts from, and where it says a read failed. */
export interface UnreadCounts {
  store: Pick<Store, 'unreadCount'>;
  log: Pick<FastifyBaseLogger, 'error'>;
}

/** Where the hub reads a user's preferences, once per user when their first stream here opens. */
export interface PreferencesSource {
  load(user: string): Promise<Preferences | null>;
  /** A failed read leaves the user unfiltered live (they still are in catch-up and history). */
  onError(err: unknown, user: string): void;
}

/** For hubs built without a store (unit tests): nobody has preferences. */
const noPreferences: PreferencesSource = { load: async () => null, onError: () => {} };

/** One open stream (SSE or WebSocket) as the hub sees it. */
export interface Connection {
  readonly user: string;
  readonly topics: readonly string[];
  /** A live notification routed to this stream, in increasing id order. */
  deliver(ev: OutEvent): void;
  /** A read/deleted change of this stream's user, from any of their tabs on any instance. */
  userEvent(ev: OutEvent): void;
  /**
   * How many notifications this stream has written live so far; undefined while it is still catching
   * up (it then sends its own count once caught up, see `unread`).
   */
  readonly liveCount: number | undefined;
  /** Whether the stream is sent unread counts (`unread`): not over Pusher, whose protocol has no such event. */
  readonly countsUnread: boolean;
  /**
   * The user's unread count up to the id the hub had routed when it read it, and this stream's
   * `liveCount` then: the stream adds what it has written live since, which the client counted already.
   */
  unread(count: number, liveCountThen: number): void;
  /** An event of one of this stream's topics that is not stored (Pusher client events, presence changes). */
  ephemeral(ev: OutEvent): void;
  heartbeat(): void;
  /** Closes the stream so the client reconnects (elsewhere, on shutdown). */
  end(): void;
}

/**
 * Told when a direct (`user`/`users`) notification reaches a stream of one of its recipients, live or
 * in a replay: delivered receipts. Never for topic and broadcast notifications, whose recipients are
 * every open stream: a receipt each would cost more than the fan-out itself.
 */
export interface DeliveryReceipts {
  delivered(user: string, n: StoredNotification): void;
}

/**
 * Who a notification is for: the targeting rule, written once. The hub routes live events by it and
 * the recent-events ring (recent.ts) filters replays by it; the stores' audience queries are its SQL form.
 */
export function targetOf(n: StoredNotification): Target {
  if (n.broadcast) return { broadcast: true };
  if (n.topic !== null) return { topic: n.topic };
  return { users: n.users ?? [] };
}

/** Whether a stream of `a` receives `n`. */
export function reaches(n: StoredNotification, a: Audience): boolean {
  const t = targetOf(n);
  if ('broadcast' in t) return true;
  if ('topic' in t) return a.topics.includes(t.topic);
  return t.users.includes(a.user);
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
  /** The in-app mutes of the users with a stream open here: live fan-out reads no store. */
  private readonly mutes = new MuteIndex();
  /** Each user's latest read of their preferences in flight: only the latest one is applied. */
  private readonly loading = new Map<string, Promise<void>>();
  private newest = 0;
  /** Users whose unread count is being read; `again`: another change came meanwhile, read once more after. */
  private readonly counting = new Map<string, { again: boolean }>();
  /** Told when a user's first stream here opens (true) and their last one closes (false): presence. */
  private readonly presence: ((user: string, online: boolean) => void)[] = [];
  private readonly unsubscribe: () => void;
  // One timer for every stream rather than one each: at tens of thousands of streams, timers add up.
  private readonly heartbeatTimer: NodeJS.Timeout;

  constructor(
    bus: Bus,
    heartbeatMs: number,
    private readonly metrics: Metrics,
    private readonly counts: UnreadCounts,
    private readonly receipts?: DeliveryReceipts,
    private readonly preferences: PreferencesSource = noPreferences,
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
    const first = !this.byUser.has(c.user);
    this.all.add(c);
    addTo(this.byUser, c.user, c);
    for (const t of c.topics) addTo(this.byTopic, t, c);
    if (!first) return;
    void this.loadPreferences(c.user);
    for (const f of this.presence) f(c.user, true);
  }

  remove(c: Connection): void {
    if (!this.all.delete(c)) return;
    removeFrom(this.byUser, c.user, c);
    for (const t of c.topics) removeFrom(this.byTopic, t, c);
    if (this.byUser.has(c.user)) return;
    this.mutes.delete(c.user);
    for (const f of this.presence) f(c.user, false);
  }

  onPresence(f: (user: string, online: boolean) => void): void {
    this.presence.push(f);
  }

  /** The users with a stream open here. */
  users(): IterableIterator<string> {
    return this.byUser.keys();
  }

  /** (Re)reads a user's preferences into the mute index; a later read supersedes one still in flight. */
  private loadPreferences(user: string): Promise<void> {
    const p: Promise<void> = this.preferences
      .load(user)
      .then((prefs) => {
        if (this.loading.get(user) !== p || !this.byUser.has(user)) return;
        if (prefs) this.mutes.set(user, inappMutes(prefs));
        else this.mutes.delete(user);
      })
      .catch((err: unknown) => this.preferences.onError(err, user))
      .finally(() => {
        if (this.loading.get(user) === p) this.loading.delete(user);
      });
    this.loading.set(user, p);
    return p;
  }

  /**
   * Resolves once the user's preferences are in the mute index. Live events that reach a stream
   * before then are held by its subscription, which checks them with `isMuted` when it releases them.
   */
  async preferencesLoaded(user: string): Promise<void> {
    while (this.loading.has(user)) await this.loading.get(user);
  }

  /** Whether the user's preferences mute this live event (for events routed before they were loaded). */
  isMuted(user: string, ev: OutEvent): boolean {
    return ev.notification !== undefined && this.mutes.isMuted(user, ev.notification);
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
      case 'preferences':
        // New mutes change what counts as unread: the count follows once the hub filters by them too.
        if (this.byUser.has(msg.user)) void this.loadPreferences(msg.user).then(() => this.recount(msg.user));
        return;
      case 'read':
      case 'read-all':
      case 'deleted': {
        const set = this.byUser.get(msg.user);
        if (!set) return;
        const ev = OutEvent.user(msg);
        for (const c of set) c.userEvent(ev);
        this.recount(msg.user);
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
    // Null for a notification nobody here muted: then the loops below are the ones without preferences.
    const muted = this.mutes.mutedUsers(n);
    const t = targetOf(n);
    let streams = 0;
    if ('users' in t) {
      for (const u of t.users) {
        const set = this.byUser.get(u);
        if (!set || muted?.has(u)) continue;
        for (const c of set) c.deliver(ev);
        streams += set.size;
        this.receipts?.delivered(u, n);
      }
    } else {
      const set = 'broadcast' in t ? this.all : this.byTopic.get(t.topic);
      if (set && muted) {
        for (const c of set) {
          if (muted.has(c.user)) continue;
          c.deliver(ev);
          streams++;
        }
      } else if (set) {
        for (const c of set) c.deliver(ev);
        streams = set.size;
      }
    }
    this.metrics.fannedOut(streams, n.createdAt);
  }

  /**
   * Sends each open stream of `user` on this instance its unread count, after a change to it (a read,
   * read-all or delete, on any instance; a topic a WebSocket added or dropped). One store read per
   * distinct set of topics among the user's streams (one, unless their tabs named different topics).
   * While a read is in flight, further changes are folded into one more read after it, so counts
   * reach a stream in order and a burst of reads costs two store reads, not one each.
   */
  /** A stream's first count, read where every later one is. */
  unreadCount(audience: Audience, upTo: number): Promise<number> {
    return this.counts.store.unreadCount(audience, { upTo });
  }

  recount(user: string): void {
    if (!this.byUser.has(user)) return;
    const state = this.counting.get(user);
    if (state) {
      state.again = true;
      return;
    }
    this.counting.set(user, { again: false });
    void this.countFor(user);
  }

  private async countFor(user: string): Promise<void> {
    for (;;) {
      await this.sendCounts(user).catch((err: unknown) => {
        // Clients keep the count they have (it moves with each notification); the next change corrects it.
        this.counts.log.error({ err }, 'unread count read failed; streams keep their count until the next change');
      });
      const state = this.counting.get(user)!;
      if (!state.again) return void this.counting.delete(user);
      state.again = false;
    }
  }

  private async sendCounts(user: string): Promise<void> {
    const streams = [...(this.byUser.get(user) ?? [])].filter((c) => c.countsUnread);
    // Every notification up to `upTo` has been routed here; those after it that a stream writes
    // before the count arrives, the client has counted already, so the stream adds them.
    const upTo = this.newest;
    const then = streams.map((c) => c.liveCount);
    const reads = new Map<string, Promise<number>>();
    const counts = await Promise.all(
      streams.map((c) => {
        // Topic names cannot hold a line break: the sorted names joined by one identify the set.
        const key = [...c.topics].sort().join('\n');
        let read = reads.get(key);
        if (!read) reads.set(key, (read = this.counts.store.unreadCount({ user, topics: c.topics }, { upTo })));
        return read;
      }),
    );
    streams.forEach((c, i) => {
      const liveCountThen = then[i];
      // A stream still catching up then sends the count it reads once caught up instead.
      if (liveCountThen !== undefined) c.unread(counts[i]!, liveCountThen);
    });
  }

  /** A stream of `user` replayed `notifications` (catch-up): its direct ones are delivered. */
  replayed(user: string, notifications: readonly StoredNotification[]): void {
    if (!this.receipts) return;
    for (const n of notifications) if (n.users !== null) this.receipts.delivered(user, n);
  }

  /** Ends every stream (shutdown) and stops listening to the bus. */
  close(): void {
    this.unsubscribe();
    clearInterval(this.heartbeatTimer);
    for (const c of [...this.all]) c.end();
  }
}
