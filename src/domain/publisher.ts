import { createHash } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Bus } from '../bus/bus.js';
import type { Metrics } from '../metrics.js';
import type { InsertResult, Store } from '../store/store.js';
import type { NewNotification } from '../types.js';

/** A publisher's retry key: the same publisher and key with the same request is answered, not done again. */
export interface Idempotency {
  publisher: string;
  key: string;
}

/** What a publish logs to: only a failed announce, which costs live delivery and nothing else. */
export type PublishLog = Pick<FastifyBaseLogger, 'error'>;

/** `created`: committed and announced now. `replayed`: committed by an earlier attempt, announced then. */
export type PublishResult = InsertResult;

/** JSON with every object's keys sorted (arrays keep their order): the same for the same fields in any order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]))
      : v,
  );
}

/**
 * The domain step of a publish, whichever transport asks: the notification is committed to the store,
 * then announced on the bus so every instance's streams get it live, then counted.
 */
export class Publisher {
  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly metrics: Metrics,
    private readonly log: PublishLog,
  ) {}

  /**
   * With `idempotency`, a retry of the same request gets the first result (`replayed`) and a different
   * request under the same key gets `conflict`; neither is announced or counted again. `log` is the
   * caller's (a request's, so the line carries its id). `exceptSocket` (a Pusher publish's `socket_id`)
   * is the one socket not to receive it live.
   */
  async publish(n: NewNotification, idempotency?: Idempotency, log: PublishLog = this.log, exceptSocket?: string): Promise<PublishResult> {
    // Over what is asked for, not the request's bytes: a retry that orders fields differently, sends
    // null for an absent field or `users: [x]` for `user: x` asks for the same notification.
    const key = idempotency && { ...idempotency, requestHash: createHash('sha256').update(canonicalJson(n)).digest('hex') };
    const result = await this.store.insert(n, key);
    if (result.status !== 'created') return result;
    // The row is committed: a failing bus costs live delivery only, and catch-up will still carry it.
    await this.bus.publish({ kind: 'notification', notification: result.notification, ...(exceptSocket && { exceptSocket }) }).catch((err: unknown) => {
      log.error({ err, id: result.notification.id }, 'bus publish failed; clients get it by catch-up');
    });
    this.metrics.notificationPublished(n.target);
    return result;
  }
}
