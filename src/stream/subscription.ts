import type { Connection, Hub } from './hub.js';
import { OutEvent } from './out-event.js';
import type { Metrics } from '../metrics.js';
import type { Replay } from './recent.js';

/** Where a subscription writes: an SSE response or a WebSocket. */
export interface Sink {
  /** A live event: past the pending-bytes bound, the transport drops the client (it resumes by id). */
  send(ev: OutEvent): void;
  /**
   * A replay: paced by the transport draining rather than cut by the pending-bytes bound, since a
   * replay can be far larger than that bound. Resolves once written, or once the client is gone.
   */
  sendMany(evs: readonly OutEvent[]): Promise<void>;
  /**
   * The stream's resume point, written once when it starts, before any notification: the id a client
   * reconnecting right away would resume from (SSE: an `id:`-only event; WebSocket: the `ready` frame).
   */
  resumePoint(id: number): void;
  /** Whether the transport has an `unread` event: a stream over one that has none (Pusher) never reads a count. */
  readonly carriesUnread: boolean;
  /** An event not stored (see `Ephemeral`): only the Pusher transport writes them; others leave this out. */
  ephemeral?(ev: OutEvent): void;
  heartbeat(): void;
  /** Graceful end (shutdown): flush, then close. */
  end(): void;
  /** Drops the client at once, unsent output and all. */
  abort(): void;
}

/** Replays are written in pieces of about this many bytes, each after the previous one drained. */
export const replayChunkBytes = 64 * 1024;

export interface SubscriptionDeps {
  /** The store's catch-up, or the recent-events ring in front of it. */
  replay: Replay;
  hub: Hub;
  catchupLimit: number;
  metrics: Metrics;
}

/**
 * One client's stream: catch-up from the store, then live events from the hub, with no gap and no
 * duplicate. It joins the hub *before* reading the store and holds live events until the replay is
 * written; after that, an event is written only if its id is above the last id written. Every stream
 * starts with its resume point, even one that resumes from nothing, so that a client which has received
 * nothing yet still reconnects from where it started rather than from wherever the store is by then.
 * Both transports use this class, so the guarantee is written once.
 */
export class Subscription implements Connection {
  private lastSent = 0;
  /** Live events that arrived before and during catch-up; null once live. */
  private held: OutEvent[] | null = [];
  private joined = false;
  /** The hub's newest id when this stream joined it: every notification above it reaches the stream live. */
  private liveAfter = 0;
  private closed = false;
  private readonly topicSet: Set<string>;
  /** Notifications written live, once caught up (see `Connection.liveCount`). */
  private written = 0;
  /** A change to the user's unread count came while this stream read its first count: read it again. */
  private recount = false;

  constructor(
    private readonly deps: SubscriptionDeps,
    readonly user: string,
    topics: readonly string[],
    private readonly sink: Sink,
  ) {
    this.topicSet = new Set(topics);
  }

  get topics(): readonly string[] {
    return [...this.topicSet];
  }

  /**
   * Joins the hub before the resume point is known (a WebSocket client may send it in its first
   * message): live events are held from here until `start` has written the replay, so none is lost.
   */
  join(): void {
    if (this.joined || this.closed) return;
    this.joined = true;
    this.deps.hub.add(this);
    this.liveAfter = this.deps.hub.newestId;
  }

  /** Live events of `topic` from now on; earlier ones are in the history (GET /notifications?topic=). */
  subscribe(topic: string): void {
    if (this.topicSet.has(topic)) return;
    this.topicSet.add(topic);
    this.deps.hub.topicAdded(this, topic);
  }

  unsubscribe(topic: string): void {
    if (!this.topicSet.delete(topic)) return;
    this.deps.hub.topicRemoved(this, topic);
  }

  /** Starts the stream; `lastId` is the client's Last-Event-ID, if it has one. */
  async start(lastId: number | undefined): Promise<void> {
    this.join();
    try {
      // Without a Last-Event-ID the stream starts where it joined: what is newer reaches it live,
      // what is not is the client's past (its history).
      if (lastId === undefined) this.resumeAt(this.liveAfter);
      else await this.catchUp(lastId);
      await this.deps.hub.preferencesLoaded(this.user);
      await this.sendFirstCount();
    } catch (err) {
      this.close();
      throw err;
    }
    const held = this.held ?? [];
    this.held = null;
    // Some may have been routed before the hub knew this user's mutes.
    for (const ev of held) {
      if (ev.event === 'ephemeral') this.ephemeral(ev);
      else if (!this.deps.hub.isMuted(this.user, ev)) this.deliver(ev);
    }
  }

  private async catchUp(lastId: number): Promise<void> {
    const { replay, catchupLimit, metrics } = this.deps;
    // One store call per replay page: the head, the page and the pruned horizon from one snapshot.
    const { head, missed, prunedUpTo } = await replay.catchUp(this, lastId, catchupLimit + 1);
    // A client ahead of the store (a reset database, or an id from elsewhere) would otherwise wait
    // silently until ids caught up with it; one too far behind would get an unbounded replay.
    if (lastId > head) return this.reload(head, 'ahead-of-server');
    // Retention deleted something this client never saw: replaying the rest would hide the hole.
    if (lastId < prunedUpTo) return this.reload(head, 'pruned');
    if (missed.length > catchupLimit) return this.reload(head, 'catchup-limit');
    metrics.caughtUp(missed.length);
    this.resumeAt(lastId);
    if (this.closed || missed.length === 0) return;
    await this.sink.sendMany(missed.map((n) => OutEvent.notification(n)));
    this.lastSent = missed[missed.length - 1]!.id;
    if (!this.closed) this.deps.hub.replayed(this.user, missed);
  }

  /**
   * The unread count, once the replay is written and before any held live event: counted up to the
   * last id written, so the client, which counts each later notification as one more, stays exact.
   * A read, read-all or delete during the count's read may be missing from it: read again (a few
   * times at most; a later change sends a fresh count anyway).
   */
  private async sendFirstCount(): Promise<void> {
    if (!this.sink.carriesUnread) return;
    for (let attempt = 1; ; attempt++) {
      this.recount = false;
      const count = await this.deps.hub.unreadCount(this, this.lastSent);
      if (this.closed) return;
      // As part of the replay (paced by the socket draining): the replay's last bytes may still be
      // queued, past the live bound a `send` would cut the client at.
      if (!this.recount || attempt === 3) return this.sink.sendMany([OutEvent.unread(count)]);
    }
  }

  private reload(head: number, reason: string): void {
    this.deps.metrics.catchupReload(reason);
    this.resumeAt(head);
    if (!this.closed) this.sink.send(OutEvent.reload(head, reason));
  }

  /**
   * Tells the client where it stands before anything else is written. From here on only larger ids
   * are written: a smaller one after it would move the client's resume point back, and the next
   * reconnect would replay what it already has.
   */
  private resumeAt(id: number): void {
    this.lastSent = id;
    if (!this.closed) this.sink.resumePoint(id);
  }

  /** Holds `ev` while the replay is written; false once live. */
  private hold(ev: OutEvent): boolean {
    if (!this.held) return false;
    // A client that stalls mid-replay must not make held events grow without bound: drop it, and
    // it resumes by id; the same bound as the replay itself.
    if (this.held.length >= this.deps.catchupLimit) this.abort();
    else this.held.push(ev);
    return true;
  }

  deliver(ev: OutEvent): void {
    if (this.hold(ev)) return;
    // Live ids only ever increase; anything at or below lastSent was already written by the replay.
    if (this.closed || ev.id! <= this.lastSent) return;
    this.lastSent = ev.id!;
    this.written++;
    this.sink.send(ev);
  }

  userEvent(ev: OutEvent): void {
    if (this.held) this.recount = true;
    if (!this.closed) this.sink.send(ev);
  }

  get liveCount(): number | undefined {
    return this.held ? undefined : this.written;
  }

  get countsUnread(): boolean {
    return this.sink.carriesUnread;
  }

  unread(count: number, liveCountThen: number): void {
    if (!this.closed && !this.held) this.sink.send(OutEvent.unread(count + this.written - liveCountThen));
  }

  /** Held like a live notification, so that none reaches the client before its resume point. */
  ephemeral(ev: OutEvent): void {
    if (this.hold(ev)) return;
    if (!this.closed) this.sink.ephemeral?.(ev);
  }

  heartbeat(): void {
    if (!this.closed) this.sink.heartbeat();
  }

  /** Server-initiated end: the client will reconnect and resume from its last id. */
  end(): void {
    if (this.closed) return;
    this.close();
    this.sink.end();
  }

  private abort(): void {
    this.close();
    this.sink.abort();
  }

  /** The transport went away: forget this stream. */
  close(): void {
    this.closed = true;
    this.held = null;
    this.deps.hub.remove(this);
  }
}
