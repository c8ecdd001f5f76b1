import type { NewNotification, StoredNotification } from '../types.js';
import type { IdempotencyKey, OutboxEntry, PushJob, UserAction, WebhookJob, WebhookStatus } from './store.js';

/** One publish, as it waits for its transaction. */
export interface Publish {
  n: NewNotification;
  idempotency: IdempotencyKey | undefined;
}

/** A new notification as both stores write it, all but its id (the store assigns that). */
export interface NewRow extends Omit<StoredNotification, 'id'> {
  /** `data`, `actor` and `actions` as the JSON text stored. */
  dataJson: string | null;
  actorJson: string | null;
  actionsJson: string | null;
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
    title: n.title,
    body: n.body ?? null,
    data: n.data ?? null,
    type: n.type ?? null,
    topic: 'topic' in t ? t.topic : null,
    broadcast: 'broadcast' in t,
    critical: n.critical ?? false,
    createdAt: isoNow(),
    url: n.url ?? null,
    icon: n.icon ?? null,
    actor: n.actor ?? null,
    actions: n.actions ?? null,
    users: 'users' in t ? [...new Set(t.users)] : null,
    dataJson: jsonText(n.data),
    actorJson: jsonText(n.actor),
    actionsJson: jsonText(n.actions),
  };
}

/**
 * A new row as the SQLite writer thread takes it: without the objects its JSON columns were made from,
 * which would only be copied across threads to be dropped there.
 */
export type WriteRow = Omit<NewRow, 'data' | 'actor' | 'actions'>;

// This and `created` name every field rather than use object rest, which V8 runs in a slow generic
// runtime path: on the publish path both cost more than the rest of the row's making together.
export const forWriting = (r: NewRow): WriteRow => ({
  title: r.title,
  body: r.body,
  type: r.type,
  topic: r.topic,
  broadcast: r.broadcast,
  critical: r.critical,
  createdAt: r.createdAt,
  url: r.url,
  icon: r.icon,
  users: r.users,
  dataJson: r.dataJson,
  actorJson: r.actorJson,
  actionsJson: r.actionsJson,
});

/** The notification a written row is, as its publisher is answered (no read back: it is what was written). */
export function created(r: NewRow, id: number): StoredNotification {
  return {
    id,
    title: r.title,
    body: r.body,
    data: r.data,
    type: r.type,
    topic: r.topic,
    broadcast: r.broadcast,
    critical: r.critical,
    createdAt: r.createdAt,
    url: r.url,
    icon: r.icon,
    actor: r.actor,
    actions: r.actions,
    users: r.users,
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
