import type { FastifyBaseLogger } from 'fastify';
import type { Bus } from '../bus/bus.js';
import type { Store, WebhookJob } from '../store/store.js';
import type { UserEvent } from '../types.js';

/** The webhook jobs that report a user's change made at `at`: committed with the change. */
export type UserEventOutbox = (e: UserEvent, at: string) => WebhookJob[];

/**
 * A user's changes to their own notifications (read, read all, delete), whichever transport asks:
 * each is committed to the store, then announced on the bus so the user's other tabs stay in step.
 */
export class Inbox {
  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly log: FastifyBaseLogger,
    private readonly outbox: UserEventOutbox = () => [],
  ) {}

  /** The change is committed whatever the bus does: a failed announce costs the other tabs a refresh, nothing more. */
  private announce(e: UserEvent): Promise<void> {
    return this.bus.publish(e).catch((err: unknown) => this.log.error({ err }, 'bus publish of a user event failed'));
  }

  /** False if the user may not see the notification (or deleted it). */
  async markRead(user: string, id: number): Promise<boolean> {
    const at = new Date().toISOString();
    if (!(await this.store.markRead(user, id, { at, outbox: this.outbox({ kind: 'read', user, ids: [id] }, at) }))) return false;
    await this.announce({ kind: 'read', user, ids: [id] });
    return true;
  }

  /** Returns the watermark: every notification up to it is now read. */
  async markAllRead(user: string): Promise<number> {
    const at = new Date().toISOString();
    const upTo = await this.store.markAllRead(user, { at, outbox: (upTo) => this.outbox({ kind: 'read-all', user, upTo }, at) });
    await this.announce({ kind: 'read-all', user, upTo });
    return upTo;
  }

  /** False if the user may not see the notification. */
  async remove(user: string, id: number): Promise<boolean> {
    const at = new Date().toISOString();
    if (!(await this.store.remove(user, id, { at, outbox: this.outbox({ kind: 'deleted', user, id }, at) }))) return false;
    await this.announce({ kind: 'deleted', user, id });
    return true;
  }
}
