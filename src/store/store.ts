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

export interface ListQuery {
  /** Only ids below this (cursor pagination, newest first). */
  before?: number;
  limit: number;
  unreadOnly: boolean;
  /** Also list what the user's preferences mute (each flagged `muted`). */
  includeMuted?: boolean;
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
  /** One user's history, newest first. */
  list(audience: Audience, query: ListQuery): Promise<InboxItem[]>;
  unreadCount(audience: Audience): Promise<number>;
  /** Marks one notification read; false if the user may not see it (or deleted it). */
  markRead(user: string, id: number): Promise<boolean>;
  /** Marks everything up to now read; returns the watermark. */
  markAllRead(user: string): Promise<number>;
  /** Hides one notification from this user only; false if the user may not see it. */
  remove(user: string, id: number): Promise<boolean>;
  /** The newest id ever committed (0 when none), even if retention has since deleted it. */
  lastId(): Promise<number>;
  /**
   * Retention. Deletes notifications created before `olderThan`, and removes from each user's view
   * their direct notifications beyond the newest `perUser` (the row itself goes once no recipient is
   * left), with their read/deleted state and idempotency keys. In the same transaction as each removal
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
   * From then on every insert of a notification to `user` (direct targets) queues a push job for it,
   * in the insert's transaction.
   */
  addPushSubscription(user: string, sub: PushSubscriptionRecord, maxPerUser: number): Promise<void>;
  /** Removes a subscription (and its pending jobs); `user` given: only if it is theirs. False if there was none. */
  removePushSubscription(endpoint: string, user?: string): Promise<boolean>;
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
