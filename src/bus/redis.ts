import { Redis } from 'ioredis';
import { printable } from '../config.js';
import type { Store } from '../store/store.js';
import type { BusMessage, StoredNotification } from '../types.js';
import type { Bus, BusHandler, BusLogger } from './bus.js';

/** Most rows one gap-repair read fetches; a long outage is repaired in several reads. */
const rangeChunk = 1000;

type Work = { msg: BusMessage } | { resync: true };

const silent: BusLogger = { warn: () => {}, error: () => {} };

/**
 * The scale-out bus: Redis pub/sub between instances, the store as the record of what was missed.
 *
 * Redis pub/sub delivers at most once: a message published while an instance's connection is down
 * is gone, and messages from two publishing instances may arrive in either order. Ids are dense and
 * become visible in order (see the stores), so each instance delivers notifications to its hub
 * strictly in id order, exactly once: a message past the next expected id first pulls the missing
 * range from the store, a message at or below the last delivered id is dropped, and after every
 * (re)subscribe, and every `resyncMs`, the instance reads everything up to the store's newest id.
 * Per-user events (read, deleted) are passed on as they arrive, best effort.
 */
export class RedisBus implements Bus {
  private readonly handlers = new Set<BusHandler>();
  private lastDelivered = 0;
  /** Messages and resyncs, handled one at a time in arrival order, so repairs never interleave. */
  private readonly work: Work[] = [];
  private draining: Promise<void> | undefined;
  private log: BusLogger = silent;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    /** Publishes only; fails fast while disconnected rather than queueing (the store has the row). */
    private readonly pub: Redis,
    /** Subscribed to the channel; a connection in subscriber mode cannot publish. */
    private readonly sub: Redis,
    private readonly store: Store,
    /**
     * How often the instance compares the store's newest id with the newest it delivered. Catches a
     * notification whose message never reached Redis (its publisher lost Redis just then, or Redis
     * is down) when no later message reveals the gap: such a notification is at most this late.
     */
    private readonly resyncMs: number,
    /** The one channel every instance of this deployment publishes to and listens on. */
    private readonly channel: string,
  ) {}

  /** Connects both connections and subscribes; rejects if Redis cannot be reached now. */
  static async open(url: string, store: Store, resyncMs: number, channel: string): Promise<RedisBus> {
    const common = { lazyConnect: true, connectTimeout: 5000 };
    const bus = new RedisBus(
      new Redis(url, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 0 }),
      // Resubscribing is done by hand on 'ready', so the resync can wait for the subscription.
      new Redis(url, { ...common, autoResubscribe: false }),
      store,
      resyncMs,
      channel,
    );
    let lastError: Error | undefined;
    bus.sub.once('error', (err: Error) => (lastError = err));
    try {
      await bus.start();
    } catch (err) {
      bus.pub.disconnect();
      bus.sub.disconnect();
      // ioredis rejects with "Connection is closed."; the error event says why.
      throw new Error(`cannot use Redis at ${printable(url)}: ${(lastError ?? (err as Error)).message}`, { cause: err });
    }
    return bus;
  }

  private async start(): Promise<void> {
    for (const conn of [this.pub, this.sub]) {
      conn.on('error', (err: Error) => this.log.warn({ err }, 'redis connection error'));
    }
    // The only subscription is the one channel.
    this.sub.on('message', (_channel: string, text: string) => {
      let msg: BusMessage;
      try {
        msg = JSON.parse(text) as BusMessage;
      } catch (err) {
        // Not one of ours: another program writes to the channel.
        this.log.warn({ err }, 'ignoring a message that is not JSON on the bus channel');
        return;
      }
      this.enqueue({ msg });
    });
    // No stream is open yet: nothing older than this needs live delivery.
    this.lastDelivered = await this.store.lastId();
    await Promise.all([this.pub.connect(), this.sub.connect()]);
    await this.sub.subscribe(this.channel);
    this.enqueue({ resync: true });
    // Registered after the first connect, so it handles reconnects only.
    this.sub.on('ready', () => void this.resubscribe());
    this.timer = setInterval(() => {
      if (!this.draining) this.enqueue({ resync: true });
    }, this.resyncMs);
    this.timer.unref();
  }

  private async resubscribe(): Promise<void> {
    try {
      await this.sub.subscribe(this.channel);
    } catch (err) {
      // The connection dropped again; its next 'ready' retries.
      this.log.warn({ err }, 'redis resubscribe failed');
      return;
    }
    this.log.warn({ afterId: this.lastDelivered }, 'redis reconnected; re-reading what was published meanwhile from the store');
    this.enqueue({ resync: true });
  }

  useLogger(log: BusLogger): void {
    this.log = log;
  }

  async publish(msg: BusMessage): Promise<void> {
    await this.pub.publish(this.channel, JSON.stringify(msg));
  }

  subscribe(handler: BusHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  async ping(): Promise<void> {
    await this.pub.ping();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.work.length = 0;
    // A repair in progress reads the store, which the caller closes next.
    await this.draining;
    this.handlers.clear();
    this.pub.disconnect();
    this.sub.disconnect();
  }

  private enqueue(w: Work): void {
    if (this.closed) return;
    this.work.push(w);
    this.draining ??= this.drain();
  }

  private async drain(): Promise<void> {
    while (this.work.length > 0) {
      const w = this.work.shift()!;
      try {
        if ('resync' in w) await this.deliverUpTo(await this.store.lastId());
        else await this.handle(w.msg);
      } catch (err) {
        // Nothing was skipped: lastDelivered did not move past what failed, so the next message or
        // resync reads the same range again.
        this.log.error({ err }, 'reading missed notifications from the store failed; retrying on the next message');
      }
    }
    this.draining = undefined;
  }

  private async handle(msg: BusMessage): Promise<void> {
    if (msg.kind !== 'notification') {
      this.emit(msg);
      return;
    }
    const n = msg.notification;
    // Already delivered, from the store during a repair (or a duplicate).
    if (n.id <= this.lastDelivered) return;
    // Some message did not arrive (yet): the store has every committed id below this one.
    if (n.id > this.lastDelivered + 1) await this.deliverUpTo(n.id - 1);
    this.deliver(n, msg.exceptSocket);
  }

  /** Delivers every notification after lastDelivered up to `upTo` from the store, in id order. */
  private async deliverUpTo(upTo: number): Promise<void> {
    while (this.lastDelivered < upTo && !this.closed) {
      const end = Math.min(upTo, this.lastDelivered + rangeChunk);
      for (const n of await this.store.range(this.lastDelivered, end)) this.deliver(n);
      // Ids with no row (removed since) are passed over, not waited for.
      this.lastDelivered = end;
    }
  }

  /** `exceptSocket` travels with the message only: a notification repaired from the store has none. */
  private deliver(n: StoredNotification, exceptSocket?: string): void {
    this.lastDelivered = n.id;
    this.emit({ kind: 'notification', notification: n, ...(exceptSocket && { exceptSocket }) });
  }

  private emit(msg: BusMessage): void {
    for (const h of this.handlers) h(msg);
  }
}
