import type { NewNotification, StoredNotification } from '../types.js';
import type { IdempotencyKey, PushJob } from './store.js';

/** One publish, as it waits for its transaction. */
export interface Publish {
  n: NewNotification;
  idempotency: IdempotencyKey | undefined;
}

/** A new notification as both stores write it, all but its id (the store assigns that). */
export interface NewRow extends Omit<StoredNotification, 'id'> {
  /** `data` as the JSON text stored. */
  dataJson: string | null;
}

/** The row of a new notification; `users` are its recipients, each once. */
export function newRow(n: NewNotification): NewRow {
  const t = n.target;
  return {
    title: n.title,
    body: n.body ?? null,
    data: n.data ?? null,
    type: n.type ?? null,
    topic: 'topic' in t ? t.topic : null,
    broadcast: 'broadcast' in t,
    critical: n.critical ?? false,
    createdAt: new Date().toISOString(),
    users: 'users' in t ? [...new Set(t.users)] : null,
    dataJson: n.data === undefined ? null : JSON.stringify(n.data),
  };
}

/** The notification a written row is, as its publisher is answered (no read back: it is what was written). */
export function created({ dataJson: _dataJson, ...fields }: NewRow, id: number): StoredNotification {
  return { id, ...fields };
}

/** A push job's row, with its subscription's keys. */
export interface JobRow {
  id: number;
  notification_id: number;
  user_id: string;
  endpoint: string;
  p256dh: string;
  auth: string;
  attempts: number;
  held: number | boolean;
}

/** A push job as both stores read it (SQLite's `held` is 0/1, PostgreSQL's a boolean). */
export function jobFromRow(r: JobRow): PushJob {
  return {
    id: r.id,
    notificationId: r.notification_id,
    user: r.user_id,
    subscription: { endpoint: r.endpoint, p256dh: r.p256dh, auth: r.auth },
    attempts: r.attempts,
    held: r.held === 1 || r.held === true,
  };
}
