import { randomBytes } from 'node:crypto';
import { webhookEvents, type WebhookEndpoint, type WebhookEvent } from '../config.js';
import type { DeliveredReceipt, WebhookJob } from '../store/store.js';
import type { UserEvent } from '../types.js';

/**
 * Turns what happened into outbox jobs: one per endpoint that asked for the event, each with its own
 * `webhook-id` and the body it will be signed and sent with, every attempt alike.
 */
export class WebhookJobs {
  private readonly byEvent: Map<WebhookEvent, string[]>;

  constructor(endpoints: readonly WebhookEndpoint[]) {
    this.byEvent = new Map();
    for (const e of endpoints) {
      for (const event of e.events ?? webhookEvents) {
        this.byEvent.set(event, [...(this.byEvent.get(event) ?? []), e.url]);
      }
    }
  }

  /** Whether any endpoint asked for `event`. */
  wants(event: WebhookEvent): boolean {
    return this.byEvent.has(event);
  }

  private make(event: WebhookEvent, at: string, data: Record<string, unknown>): WebhookJob[] {
    const urls = this.byEvent.get(event);
    if (!urls) return [];
    const payload = JSON.stringify({ type: event, timestamp: at, data });
    return urls.map((endpoint) => ({ id: `msg_${randomBytes(16).toString('base64url')}`, endpoint, event, payload }));
  }

  /** A read, a read-all (one event with the watermark: everything up to `upTo` is read) or a delete. */
  userEvent(e: UserEvent, at: string): WebhookJob[] {
    switch (e.kind) {
      case 'read':
        return this.make('notification.read', at, { user: e.user, notificationId: e.ids[0], readAt: at });
      case 'read-all':
        return this.make('notification.read', at, { user: e.user, upTo: e.upTo, readAt: at });
      case 'deleted':
        return this.make('notification.deleted', at, { user: e.user, notificationId: e.id, deletedAt: at });
      case 'preferences':
        // No webhook event reports a change of preferences.
        return [];
    }
  }

  delivered(r: DeliveredReceipt): WebhookJob[] {
    return this.make('notification.delivered', r.at, { user: r.user, notificationId: r.id, deliveredAt: r.at });
  }
}
