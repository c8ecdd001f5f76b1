import type { Audience, InboxItem, Mutes, NewNotification, Preferences, StoredNotification } from '../types.js';

export interface IdempotencyKey {
  publisher: string;
  key: string;
  /** Hash of the request body: a reused key with a different request is refused, not answered. */
  requestHash: string;
}

export type InsertResult =
  | { status: 'created'; notification: StoredNotification }
  | { status: 'replayed'; notification: StoredNotification }
  | { status: 'conflict' };

/** Where a resuming stream stands, read in one go (one snapshot), so a replay costs one store call per page. */
export interface CatchUp {
  /** The newest id ever committed, as `lastId` reports it. */
  head: number;
  /** What `since` returns for the same arguments. */
  missed: StoredNotification[];
  /** What `prunedUpTo` reports for the audience's user. */
  prunedUpTo: number;
}

/** What a replay must know of one user besides the notifications: what `since` hides from them. */
export interface ReplayState {
  /** What `prunedUpTo` reports for the user. */
  prunedUpTo: number;
  /** Ids above the asked one that the user deleted (`remove`), ascending. */
  deleted: number[];
  /** The types and topics the user switched off in-app (their `inapp_mutes`): a replay leaves those out. */
  mutes: { types: string[]; topics: string[] };
}

export interface ListQuery {
  /** Only ids below this (cursor pagination, newest first). */
  before?: number;
  limit: number;
  unreadOnly: boolean;
  /** Only the audience's topics' notifications (history's `?topic=`), not also the user's own and broadcasts. */
  topicsOnly?: boolean;
  /** Also list what the user's preferences mute (each flagged `muted`). */
  includeMuted?: boolean;
}

export interface CountQuery {
  /** Only ids up to this one: a stream's count agrees with what it has written so far. */
  upTo?: number;
  /** As in `ListQuery`. */
  topicsOnly?: boolean;
}

/**
 * One outgoing webhook as the outbox holds it: written in the transaction of the change it reports,
 * sent (and retried) by the dispatcher. `id` is the `webhook-id` of every attempt; `payload` is the
 * exact body signed and sent.
 */
export interface WebhookJob {
  id: string;
  endpoint: string;
  event: string;
  payload: string;
}

export type WebhookStatus = 'pending' | 'dead';

/** An outbox row: a job, where it stands, and why its last attempt failed. */
export interface OutboxEntry extends WebhookJob {
  status: WebhookStatus;
  attempts: number;
  /** When the next attempt is due (ms since the epoch); a claim moves it to the end of its lease. */
  nextAttemptAt: number;
  lastError: string | null;
  createdAt: number;
}

/** A user's change to one notification (or to all, read-all): when, and the webhooks that report it. */
export interface UserAction<T = WebhookJob[]> {
  at: string;
  outbox: T;
}

/** The first time one of a user's streams was handed one of their direct notifications. */
export interface DeliveredReceipt {
  user: string;
  id: number;
  at: string;
}

export interface PruneOptions {
  /** Delete every notification created before this instant (whoever it was for). */
  olderThan?: Date;
  /** Keep only each user's newest `perUser` direct (`user`/`users`) notifications. */
  perUser?: number;
  /** Checked between batches: a prune stops early (shutdown) without leaving anything half done. */
  signal?: AbortSignal;
}

/** A browser's Web Push subscription (its `PushSubscription` JSON, flattened). */
export interface PushSubscriptionRecord {
  endpoint: string;
  p256dh: string;
  auth: string;
}

/** One push waiting to be sent: a notification to one subscription of its user. */
export interface PushJob {
  id: number;
  notificationId: number;
  user: string;
  subscription: PushSubscriptionRecord;
  /** Sends tried so far. */
  attempts: number;
  /** Held by quiet hours: sent in a summary with the others held for the same subscription. */
  held: boolean;
}

/**
 * The durable record of every notification and every user's read/deleted state.
 * SQLite (embedded) and PostgreSQL (scale-out) implement it; the rest of Herald sees only this.
 * Ids are visible in strictly increasing order: once a reader has seen id N, no id below N appears later.
 * Every audience query (`since`, `catchUp`, `list`, `unreadCount`) leaves out what the audience's user
 * muted in-app (their `inapp_mutes`, see domain/preferences.ts), unless `list` is asked to include it.
 */
export interface Store {
  /** Resolves once the row is committed: a resolved insert survives a crash of the process. */
  insert(n: NewNotification, idempotency?: IdempotencyKey): Promise<InsertResult>;
  /** Notifications the audience may see with id > afterId, oldest first, at most `limit`. */
  since(audience: Audience, afterId: number, limit: number): Promise<StoredNotification[]>;
  /**
   * `lastId`, `since` and `prunedUpTo` in one call, from one snapshot: what a resuming stream reads.
   * A prune or an insert commits either wholly before it or wholly after it.
   */
  catchUp(audience: Audience, afterId: number, limit: number): Promise<CatchUp>;
  /** Notifications with afterId < id <= upTo, oldest first, whoever they are for (for bus gap repair). */
  range(afterId: number, upTo: number): Promise<StoredNotification[]>;
  /**
   * `prunedUpTo` and the deletions above `afterId` of many users in one call, from one snapshot: what
   * a replay answered from memory (stream/recent.ts) needs to give exactly what `since` would.
   * Every user asked for is in the map.
   */
  replayStates(users: readonly string[], afterId: number): Promise<Map<string, ReplayState>>;
  /** One user's history, newest first. */
  list(audience: Audience, query: ListQuery): Promise<InboxItem[]>;
  /** How many of what the audience may see are unread and not deleted. */
  unreadCount(audience: Audience, query?: CountQuery): Promise<number>;
  /**
   * Marks one notification read; false if the user may not see it (or deleted it). The read time and
   * the action's webhook jobs are committed with it, or (when false) not at all.
   */
  markRead(user: string, id: number, action?: UserAction): Promise<boolean>;
  /** Marks everything up to now read; returns the watermark. The jobs, made from the watermark, commit with it. */
  markAllRead(user: string, action?: UserAction<(upTo: number) => WebhookJob[]>): Promise<number>;
  /** Hides one notification from this user only; false if the user may not see it. Jobs as for `markRead`. */
  remove(user: string, id: number, action?: UserAction): Promise<boolean>;
  /**
   * Delivered receipts, in one transaction: a receipt already recorded (by this instance or another)
   * is kept as it was; for each one recorded now, the jobs `outbox` makes commit with it.
   */
  recordDelivered(receipts: readonly DeliveredReceipt[], outbox: (r: DeliveredReceipt) => WebhookJob[]): Promise<void>;
  /**
   * Takes up to `limit` due pending jobs for one attempt each: counts the attempt and moves the job's
   * next attempt to `now + leaseMs`, so a job whose claimer dies is due again once the lease is over.
   * On PostgreSQL, instances claiming at once take different jobs.
   */
  claimWebhooks(limit: number, leaseMs: number): Promise<OutboxEntry[]>;
  /** The job was delivered: it leaves the outbox. */
  webhookDelivered(id: string): Promise<void>;
  /** The attempt failed: due again at `retryAt` (ms), or dead when `retryAt` is null. */
  webhookFailed(id: string, error: string, retryAt: number | null): Promise<void>;
  /** Jobs in one state, oldest first. */
  listWebhooks(status: WebhookStatus, limit: number): Promise<OutboxEntry[]>;
  /** A dead job is pending again, due now, its attempts counted from zero; false if no dead job has this id. */
  retryWebhook(id: string): Promise<boolean>;
  webhookCounts(): Promise<Record<WebhookStatus, number>>;
  /** The newest id ever committed (0 when none), even if retention has since deleted it. */
  lastId(): Promise<number>;
  /**
   * Retention. Deletes notifications created before `olderThan`, and removes from each user's view
   * their direct notifications beyond the newest `perUser` (the row itself goes once no recipient is
   * left), with their read/deleted state, receipts and idempotency keys (by age, also the mark-all-read
   * times the age horizon passed, which cover nothing left). In the same transaction as each removal
   * it raises the horizon `prunedUpTo` reports. Works in bounded batches so publishes keep flowing.
   * Resolves with the number of notifications deleted.
   */
  prune(opts: PruneOptions): Promise<number>;
  /**
   * The highest id ever pruned from what `user` may see: the age horizon (everyone's) or the user's cap
   * horizon, whichever is higher; 0 if nothing was pruned. A catch-up from an id below it may have
   * lost notifications and must tell the client to reload.
   */
  prunedUpTo(user: string): Promise<number>;
  /** The user's stored preferences; null when they never set any. */
  preferences(user: string): Promise<Preferences | null>;
  /** Replaces the user's preferences and the in-app mutes derived from them (`inappMutes`), in one transaction. */
  setPreferences(user: string, p: Preferences, mutes: Mutes): Promise<void>;
  /**
   * Stores (or moves to `user`) a browser's subscription; beyond `maxPerUser` the user's oldest go.
   * From then on `queuePushJobs` makes a push job for it of every notification to `user` (direct
   * targets) committed after it, and of those committed shortly before that it had not yet reached.
   */
  addPushSubscription(user: string, sub: PushSubscriptionRecord, maxPerUser: number): Promise<void>;
  /** Removes a subscription (and its pending jobs); `user` given: only if it is theirs. False if there was none. */
  removePushSubscription(endpoint: string, user?: string): Promise<boolean>;
  /**
   * Writes the push jobs of the next committed notifications, off the publish path: in one
   * transaction, takes the ids above a durable cursor, up to the newest committed id, writes a job due
   * at `now` for each (direct recipient × their subscription), and moves the cursor past them. So each
   * committed notification's jobs are written once, whichever instance and whatever crash; one
   * retention deleted first gets none. Takes at most `max` ids, holding at most `max` recipients in
   * all (unless the first alone has more: a notification is never split), so the transaction stays
   * short. Resolves with how many ids the cursor moved: 0 when there is nothing to queue.
   */
  queuePushJobs(now: number, max: number): Promise<number>;
  /**
   * Leases up to `limit` jobs due at `now` for `leaseMs`, oldest due first: no other caller, on any
   * instance, gets them until the lease runs out or the job is finished or deferred.
   */
  claimPushJobs(now: number, limit: number, leaseMs: number): Promise<PushJob[]>;
  /** Sent, or given up: the job goes. */
  finishPushJobs(ids: readonly number[]): Promise<void>;
  /** Due again at `dueAt` (a retry counts an attempt; a hold by quiet hours marks it held). */
  deferPushJob(id: number, dueAt: number, kind: 'retry' | 'hold'): Promise<void>;
  /** Reachability for readiness checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
