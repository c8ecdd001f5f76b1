import type { FastifyBaseLogger } from 'fastify';
import type { Bus } from '../bus/bus.js';
import type { WebhooksConfig } from '../config.js';
import type { UserEventOutbox } from '../domain/inbox.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import { Dispatcher } from './dispatcher.js';
import { WebhookJobs } from './jobs.js';
import { DeliveryRecorder } from './receipts.js';

/**
 * Webhooks and receipts, beside the hub: the jobs of user actions (committed by the inbox with the
 * change), delivered receipts (buffered from the hub), and, when endpoints are configured, the
 * dispatcher sending the outbox. It listens to the bus only to send a user action's webhook at once.
 */
export class Webhooks {
  readonly receipts: DeliveryRecorder;
  readonly userEventOutbox: UserEventOutbox;
  private readonly dispatcher: Dispatcher | undefined;
  private readonly unsubscribe: () => void;

  constructor(store: Store, bus: Bus, config: WebhooksConfig, secret: string | undefined, metrics: Metrics, log: FastifyBaseLogger) {
    const jobs = new WebhookJobs(config.endpoints);
    if (config.endpoints.length > 0) {
      if (secret === undefined) throw new Error('webhook endpoints are configured but no signing secret was given');
      this.dispatcher = new Dispatcher(store, secret, config, metrics, log);
    }
    this.receipts = new DeliveryRecorder(store, jobs, config.receiptFlushMs, log, () => this.wake());
    this.userEventOutbox = (e, at) => jobs.userEvent(e, at);
    // Every instance hears a user action once it is committed, so whichever holds a free slot sends it.
    this.unsubscribe = bus.subscribe((msg) => {
      if (msg.kind !== 'notification') this.wake();
    });
    metrics.watchOutbox(() => store.webhookCounts());
  }

  /** The outbox may hold due jobs: look now. */
  wake(): void {
    this.dispatcher?.wake();
  }

  start(): void {
    this.dispatcher?.start();
  }

  /** Writes the buffered receipts and stops sending; call before the store closes. */
  async close(): Promise<void> {
    this.unsubscribe();
    await this.receipts.flush();
    await this.dispatcher?.stop();
  }
}
