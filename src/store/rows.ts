import type { NewNotification, StoredNotification } from '../types.js';
import type { IdempotencyKey, OutboxEntry, PushJob, UserAction, WebhookJob, WebhookStatus } from './store.js';

/** One publish, as it waits for its transaction. */
export interface Publish {
  n: NewNotification;
  idempotency: IdempotencyKey | undefined;
}

/**
 * A new notification as both stores write it, all but its id (the store assigns that): `data`, `actor`
 * and `actions` as the JSON text stored. The SQLite writer thread takes only this.
 */
export interface WriteRow extends Omit<StoredNotification, 'id' | 'data' | 'actor' | 'actions'> {
  dataJson: string | null;
  actorJson: string | null;
  actionsJson: string | null;
}

/** The row to write, and the objects its JSON columns were made from, which the publisher's answer carries. */
export interface NewRow extends Pick<StoredNotification, 'data' | 'actor' | 'actions'> {
  write: WriteRow;
}

const jsonText = (v: object | undefined): string | null => (v === undefined ? null : JSON.stringify(v));

/**
 * Now as ISO 8601. A publish burst makes many rows in the same millisecond: they share one string
 * rather than each formatting the date again (a measurable share of a publish's CPU at 10,000/s).
 */
let isoMs = -1;
let iso = '';
function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    iso = new Date(ms).toISOString();
  }
  return iso;
}

/** The row of a new notification; `users` are its recipients, each once. */
export function newRow(n: NewNotification): NewRow {
  const t = n.target;
  return {
    write: {
      title: n.title,
      body: n.body ?? null,
      type: n.type ?? null,
      topic: 'topic' in t ? t.topic : null,
      broadcast: 'broadcast' in t,
      critical: n.critical ?? false,
      createdAt: isoNow(),
      url: n.url ?? null,
      icon: n.icon ?? null,
      users: 'users' in t ? [...new Set(t.users)] : null,
      dataJson: jsonText(n.data),
      actorJson: jsonText(n.actor),
      actionsJson: jsonText(n.actions),
    },
    data: n.data ?? null,
    actor: n.actor ?? null,
    actions: n.actions ?? null,
  };
}

/**
 * The notification a written row is, as its publisher is answered (no read back: it is what was
 * written). Every field named rather than copied with object rest (`{ dataJson, ...fields }`), which
 * V8 runs in a slow generic path: on the ingest profile that rest, here and in the strip before the
 * write, cost about 1.8 µs a publish.
 */
export function created({ write: w, data, actor, actions }: NewRow, id: number): StoredNotification {
  return {
    id,
    title: w.title,
    body: w.body,
    data,
    type: w.type,
    topic: w.topic,
    broadcast: w.broadcast,
    critical: w.critical,
    createdAt: w.createdAt,
    url: w.url,
    icon: w.icon,
    actor,
    actions,
    users: w.users,
  };
}

/** An outbox row as both stores read it (PostgreSQL's int8 columns are parsed to numbers). */
export interface OutboxRow {
  id: string;
  endpoint: string;
  event: string;
  payload: string;
  status: WebhookStatus;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
}

export function outboxEntry(r: OutboxRow): OutboxEntry {
  return {
    id: r.id,
    endpoint: r.endpoint,
    event: r.event,
    payload: r.payload,
    status: r.status,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    lastError: r.last_error,
    createdAt: r.created_at,
  };
}

/** What a caller that reports no webhook asks of the store: the change, now, and nothing to send. */
export const unreported = (): UserAction => ({ at: new Date().toISOString(), outbox: [] });
export const unreportedAll = (): UserAction<(upTo: number) => WebhookJob[]> => ({ at: new Date().toISOString(), outbox: () => [] });
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

/** A history query's three flags (`ListQuery`), numbered 0-7 so each store prepares all eight queries once. */
export interface ListFlags {
  unread: boolean;
  includeMuted: boolean;
  topicsOnly: boolean;
}

export const listIndex = (f: ListFlags): number => Number(f.unread) * 4 + Number(f.includeMuted) * 2 + Number(f.topicsOnly);
export const listFlags = (i: number): ListFlags => ({ unread: (i & 4) !== 0, includeMuted: (i & 2) !== 0, topicsOnly: (i & 1) !== 0 });

/** The eight history queries, indexed by `listIndex`. */
export const listQueries = <T>(make: (f: ListFlags) => T): T[] => Array.from({ length: 8 }, (_, i) => make(listFlags(i)));
