import type { DeliveryReceipts } from '../stream/hub.js';
import type { DeliveredReceipt, Store } from '../store/store.js';
import type { StoredNotification } from '../types.js';
import type { WebhookJobs } from './jobs.js';

/** Receipts buffered beyond this are written at once rather than at the next flush. */
const maxBuffered = 10_000;

export interface RecorderLog {
  error(obj: object, msg: string): void;
}

/**
 * Delivered receipts off the delivery path: the hub hands each (user, direct notification) to a
 * buffer, and every `flushMs` the buffer is written in one transaction, with the
 * `notification.delivered` webhooks of the receipts recorded for the first time (on any instance).
 * A receipt still buffered when the process dies is lost; a stream that resumes gets the
 * notification again in its replay, which records it then.
 */
export class DeliveryRecorder implements DeliveryReceipts {
  /** Receipts by notification id and user, with their time in ms (made an ISO string only when written). */
  private buffer = new Map<string, { user: string; id: number; at: number }>();
  private timer: NodeJS.Timeout | undefined;
  /** The writes in progress, one after the other. */
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly jobs: WebhookJobs,
    private readonly flushMs: number,
    private readonly log: RecorderLog,
    /** Called after each write: webhooks may be due now. */
    private readonly written: () => void,
  ) {}

  delivered(user: string, n: StoredNotification): void {
    const key = `${n.id}\u0000${user}`;
    if (this.buffer.has(key)) return;
    this.buffer.set(key, { user, id: n.id, at: Date.now() });
    if (this.buffer.size >= maxBuffered) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.flushMs);
  }

  /** Writes what is buffered; resolves once every write so far is done. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffer.size > 0) {
      const batch: DeliveredReceipt[] = [...this.buffer.values()].map((r) => ({ ...r, at: new Date(r.at).toISOString() }));
      this.buffer = new Map();
      this.writing = this.writing
        .then(() => this.store.recordDelivered(batch, (r) => this.jobs.delivered(r)))
        .then(this.written, (err: unknown) => this.log.error({ err, receipts: batch.length }, 'writing delivered receipts failed; they are lost'));
    }
    return this.writing;
  }
}
