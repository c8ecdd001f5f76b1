import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Target } from './types.js';

/** Seconds: from a fraction of a millisecond (memory bus) to seconds (a store under fsync pressure). */
const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Seconds: GC pauses, from a scavenge (tenths of a ms) to a full mark-compact of a large heap. */
const gcBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1];

/**
 * Herald's Prometheus metrics, one registry per app (tests run several apps in one process).
 * The fan-out path counts once per fan-out, never once per stream: a broadcast to 10,000 streams
 * is one counter increment and one histogram observation.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly published: Counter<'target'>;
  private readonly liveDelivered: Counter.Internal;
  private readonly catchupDelivered: Counter.Internal;
  private readonly catchupSize: Histogram;
  private readonly catchupReloads: Counter<'reason'>;
  private readonly slowConsumers: Counter;
  private readonly replays: Counter<'answer'>;
  private readonly replayReads: Counter<'read'>;
  private readonly publishSeconds: Histogram;
  private readonly deliverySeconds: Histogram;
  private readonly webhookAttempts: Counter<'result'>;

  /** `openStreams` is read at scrape time only, so opening and closing streams costs nothing here. */
  constructor(openStreams: () => number) {
    const registers = [this.registry];
    // Pauses from a tenth of a millisecond up: prom-client's default buckets start at 1 ms and jump
    // to 10 ms, which cannot tell a 2 ms pause (a tail-latency suspect) from a 9 ms one.
    collectDefaultMetrics({ register: this.registry, gcDurationBuckets: gcBuckets });
    new Gauge({
      name: 'herald_open_streams',
      help: 'Streams open on this instance',
      registers,
      collect() {
        this.set(openStreams());
      },
    });
    this.published = new Counter({
      name: 'herald_notifications_published_total',
      help: 'Notifications committed by POST /notifications (idempotent replays excluded), by target kind',
      labelNames: ['target'],
      registers,
    });
    const delivered = new Counter({
      name: 'herald_events_delivered_total',
      help: 'Notification events handed to streams: live (fan-out from the bus) or catchup (replayed from the store)',
      labelNames: ['source'],
      registers,
    });
    this.liveDelivered = delivered.labels('live');
    this.catchupDelivered = delivered.labels('catchup');
    this.catchupSize = new Histogram({
      name: 'herald_catchup_size',
      help: 'Notifications replayed per reconnect with Last-Event-ID',
      buckets: [0, 1, 10, 100, 1000, 10_000, 100_000],
      registers,
    });
    this.catchupReloads = new Counter({
      name: 'herald_catchup_reloads_total',
      help: 'Reconnects told to reload history instead of replaying (catchup-limit, ahead-of-server)',
      labelNames: ['reason'],
      registers,
    });
    this.replays = new Counter({
      name: 'herald_replay_ring_total',
      help: 'Resumes by how the recent-events ring answered: hit (from memory), miss (older rows from one shared store read), bypass (a store catch-up of its own: ring off or not yet seeded, client ahead of it or too far behind)',
      labelNames: ['answer'],
      registers,
    });
    this.replayReads = new Counter({
      name: 'herald_replay_store_reads_total',
      help: 'Store reads made for resumes: catchup (one per bypassing resume), range and states (one each per batch of resumes answered by the ring)',
      labelNames: ['read'],
      registers,
    });
    this.slowConsumers = new Counter({
      name: 'herald_slow_consumers_dropped_total',
      help: 'Streams closed because the client stopped reading and its unsent output passed the limit',
      registers,
    });
    this.publishSeconds = new Histogram({
      name: 'herald_publish_duration_seconds',
      help: 'A committed POST /notifications (idempotent replays excluded): from the request arriving to the answer, commit included',
      buckets: latencyBuckets,
      registers,
    });
    this.webhookAttempts = new Counter({
      name: 'herald_webhook_attempts_total',
      help: 'Webhook attempts made by this instance, by result: delivered, failed (to be retried), dead (the last attempt failed)',
      labelNames: ['result'],
      registers,
    });
    this.deliverySeconds = new Histogram({
      name: 'herald_delivery_latency_seconds',
      help: "From a notification's createdAt (set as the store accepts the POST) to its write to this instance's streams",
      buckets: latencyBuckets,
      registers,
    });
  }

  /** The webhook outbox's size by state, read from the store when scraped. */
  watchOutbox(counts: () => Promise<Record<string, number>>): void {
    new Gauge({
      name: 'herald_webhook_outbox',
      help: 'Webhooks in the outbox (shared by every instance of a deployment): pending (to be attempted) or dead (out of attempts)',
      labelNames: ['status'],
      registers: [this.registry],
      async collect() {
        // A store that does not answer must not take /metrics down with it: the last counts stay.
        const now = await counts().catch(() => ({}));
        for (const [status, n] of Object.entries(now)) this.set({ status }, n);
      },
    });
  }

  /** One attempt to send a webhook, by this instance: delivered, failed (to be retried) or dead (its last). */
  webhookAttempt(result: 'delivered' | 'failed' | 'dead'): void {
    this.webhookAttempts.inc({ result });
  }

  notificationPublished(target: Target): void {
    this.published.inc({ target: 'users' in target ? 'users' : 'topic' in target ? 'topic' : 'broadcast' });
  }

  publishLatency(seconds: number): void {
    this.publishSeconds.observe(seconds);
  }

  /** One fan-out of a live notification, written to `streams` streams. */
  fannedOut(streams: number, createdAt: string): void {
    if (streams === 0) return;
    this.liveDelivered.inc(streams);
    this.deliverySeconds.observe(Math.max(0, Date.now() - Date.parse(createdAt)) / 1000);
  }

  /** One reconnect that replayed `count` notifications. */
  caughtUp(count: number): void {
    this.catchupSize.observe(count);
    if (count > 0) this.catchupDelivered.inc(count);
  }

  catchupReload(reason: string): void {
    this.catchupReloads.inc({ reason });
  }

  /** `count` resumes answered by the ring as `answer`. */
  replayed(answer: 'hit' | 'miss' | 'bypass', count = 1): void {
    this.replays.inc({ answer }, count);
  }

  replayRead(read: 'catchup' | 'range' | 'states'): void {
    this.replayReads.inc({ read });
  }

  slowConsumerDropped(): void {
    this.slowConsumers.inc();
  }
}
