import Database from 'better-sqlite3';
import { publicView, type Audience, type InboxItem, type Mutes, type NewNotification, type Preferences, type StoredNotification } from '../types.js';
import { Checkpointer } from './checkpointer.js';
import { everyone, prune, type PruneSteps } from './prune.js';
import { columns, fromRow, lastIdSql, type Row } from './sqlite-rows.js';
import { created, jobFromRow, listIndex, listQueries, newRow, outboxEntry, unreported, unreportedAll, type ListFlags, type OutboxRow } from './rows.js';
import type {
  CatchUp,
  CountQuery,
  DeliveredReceipt,
  IdempotencyKey,
  InsertResult,
  ListQuery,
  OutboxEntry,
  PruneOptions,
  ReplayState,
  PushJob,
  PushSubscriptionRecord,
  Store,
  UserAction,
  WebhookJob,
  WebhookStatus,
} from './store.js';
import { WriterThread } from './writer-thread.js';

/**
 * The ids one audience may see, from each of the three disjoint sources (direct, broadcast, topic),
 * each an index range scan bounded by `cond` and `order LIMIT`, so a page never scans a whole history.
 * `topicsOnly`: the topic source alone.
 */
function visibleIds(cond: string, order: 'ASC' | 'DESC', topicsOnly = false): string {
  const hidden = `NOT EXISTS (SELECT 1 FROM user_state s WHERE s.user_id = @user AND s.notification_id = x.id AND s.deleted = 1)`;
  const src = (from: string) => `SELECT id FROM (SELECT x.id FROM ${from} AND ${cond} AND ${hidden} ORDER BY x.id ${order} LIMIT @limit)`;
  const topics = src(`notifications x WHERE x.topic IN (SELECT value FROM json_each(@topics))`);
  if (topicsOnly) return topics;
  return [
    src(`(SELECT notification_id AS id FROM recipients WHERE user_id = @user) x WHERE 1`),
    src(`notifications x WHERE x.broadcast = 1`),
    topics,
  ].join(' UNION ALL ');
}

/** How often the checkpointer copies the WAL into the database file: small copies, often. */
const checkpointMs = 250;

const isRead = `(n.id <= @readUpTo OR EXISTS (SELECT 1 FROM user_state s WHERE s.user_id = @user AND s.notification_id = n.id AND s.read = 1))`;
/** A user's receipts of n: the read time is that of their own read or of the first read-all that covered n, whichever came first. */
const receipts = `(SELECT delivered_at FROM receipts rc WHERE rc.user_id = @user AND rc.notification_id = n.id) AS delivered_at,
  (SELECT min(t) FROM (SELECT read_at AS t FROM receipts rc WHERE rc.user_id = @user AND rc.notification_id = n.id
    UNION ALL SELECT (SELECT read_at FROM read_all_log l WHERE l.user_id = @user AND l.up_to >= n.id ORDER BY l.up_to LIMIT 1))) AS read_at`;
const unreadX = `x.id > @readUpTo AND x.id <= @upTo AND NOT EXISTS (SELECT 1 FROM user_state s WHERE s.user_id = @user AND s.notification_id = x.id AND s.read = 1)`;

/**
 * The unread count of `visibleIds` without visiting each unread notification: each source's ids in
 * (@readUpTo, @upTo] by an index range count, less the user's own read or deleted rows in that range,
 * once per source that holds them. The subtraction is per row, but a user has few such rows (a read-all
 * clears their read ones below its mark). Mutes are not applied: see `unreadCount`.
 */
function unreadCountSql(topicsOnly: boolean): string {
  const inRange = (id: string) => `${id} > @readUpTo AND ${id} <= @upTo`;
  // `count`: the source's ids in range; `holds`: 1 if the source holds notification n, else 0.
  const topic = {
    count: `SELECT count(*) FROM notifications x WHERE x.topic IN (SELECT value FROM json_each(@topics)) AND ${inRange('x.id')}`,
    holds: `coalesce(n.topic IN (SELECT value FROM json_each(@topics)), 0)`,
  };
  const sources = topicsOnly
    ? [topic]
    : [
        {
          count: `SELECT count(*) FROM recipients x WHERE x.user_id = @user AND ${inRange('x.notification_id')}`,
          holds: `EXISTS (SELECT 1 FROM recipients r WHERE r.user_id = @user AND r.notification_id = n.id)`,
        },
        { count: `SELECT count(*) FROM notifications x WHERE x.broadcast = 1 AND ${inRange('x.id')}`, holds: `n.broadcast = 1` },
        topic,
      ];
  const excepted = `SELECT coalesce(sum(${sources.map((s) => `(${s.holds})`).join(' + ')}), 0)
    FROM user_state s JOIN notifications n ON n.id = s.notification_id
    WHERE s.user_id = @user AND ${inRange('s.notification_id')} AND (s.read = 1 OR s.deleted = 1)`;
  return `SELECT ${sources.map((s) => `(${s.count})`).join(' + ')} - (${excepted}) AS c`;
}

/** Whether the notification `id` is muted for @user: the SQL form of `isMuted` (domain/preferences.ts). */
const muted = (id: string) => `EXISTS (SELECT 1 FROM inapp_mutes m JOIN notifications mn ON mn.id = ${id}
  WHERE m.user_id = @user AND mn.critical = 0
    AND ((m.kind = 'type' AND m.name = mn.type) OR (m.kind = 'topic' AND m.name = mn.topic)))`;
const notMutedX = `NOT ${muted('x.id')}`;

/** History, newest first: unread only or not, muted ones left out or listed (flagged), the topics only or everything. */
function listSql({ unread, includeMuted, topicsOnly }: ListFlags): string {
  const cond = ['x.id < @before', ...(unread ? [unreadX] : []), ...(includeMuted ? [] : [notMutedX])].join(' AND ');
  return `SELECT ${columns}, ${unread ? '0' : isRead} AS read, ${includeMuted ? muted('n.id') : '0'} AS muted, ${receipts} FROM notifications n
    WHERE n.id IN (${visibleIds(cond, 'DESC', topicsOnly)}) ORDER BY n.id DESC LIMIT @limit`;
}

/**
 * The embedded store. Writes go to the writer thread (sqlite-writer.ts, through `WriterThread`), so
 * commits and fsyncs never block the event loop; reads run here, on a read-only connection: in WAL
 * mode a read never waits for the writer, and each one (or each `snapshot`) starts a read transaction
 * that sees every commit already answered, so a resolved `insert` is visible to the next `since`.
 */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly stmts;
  /** Several reads from one snapshot: a read transaction, which no commit of the writer enters. */
  private readonly snapshot: <T>(read: () => T) => T;
  private readonly pruneSteps: PruneSteps;
  private readonly checkpointer: Checkpointer;

  private constructor(
    file: string,
    /** The writer thread: every write, and the readiness of the store (it fails when the thread is gone). */
    readonly writer: WriterThread,
  ) {
    this.db = new Database(file, { readonly: true, fileMustExist: true });
    this.db.pragma('busy_timeout = 5000');
    this.checkpointer = new Checkpointer(file, checkpointMs);
    const db = this.db;
    this.stmts = {
      since: db.prepare(
        `SELECT ${columns} FROM notifications n WHERE n.id IN (${visibleIds(`x.id > @after AND ${notMutedX}`, 'ASC')}) ORDER BY n.id ASC LIMIT @limit`,
      ),
      range: db.prepare(`SELECT ${columns} FROM notifications n WHERE n.id > ? AND n.id <= ? ORDER BY n.id ASC`),
      // Indexed by `listIndex`.
      list: listQueries((f) => db.prepare(listSql(f))),
      // Each: [everything the audience sees, its topics only]. `unreadCount` for a user without mutes;
      // `unreadCountMuted`, which tests every unread notification, for one with mutes.
      unreadCount: [false, true].map((topicsOnly) => db.prepare(unreadCountSql(topicsOnly))),
      unreadCountMuted: [false, true].map((topicsOnly) =>
        db.prepare(`SELECT count(*) AS c FROM (${visibleIds(`${unreadX} AND ${notMutedX}`, 'ASC', topicsOnly)})`),
      ),
      // A topic mute can only hit a notification of that topic: one the audience does not follow changes nothing.
      mutesApply: db.prepare(
        `SELECT 1 FROM inapp_mutes WHERE user_id = @user AND (kind = 'type' OR name IN (SELECT value FROM json_each(@topics))) LIMIT 1`,
      ),
      preferences: db.prepare(`SELECT doc FROM preferences WHERE user_id = ?`),
      readUpTo: db.prepare(`SELECT read_up_to FROM read_marks WHERE user_id = ?`),
      lastId: db.prepare(lastIdSql),
      // Whether `queuePushJobs` has anything to do: nothing while nobody is subscribed (see the writer's addPushSubscription).
      pushBehind: db.prepare(
        `SELECT EXISTS (SELECT 1 FROM push_subscriptions) AND (SELECT last_id FROM push_cursor) < (${lastIdSql}) AS behind`,
      ),
      // Uses push_jobs_due; a due job is found among the first rows unless a whole backlog is leased.
      anyPushDue: db.prepare(`SELECT 1 FROM push_jobs WHERE due_at <= @now AND locked_until <= @now LIMIT 1`),
      listWebhooks: db.prepare(`SELECT * FROM webhook_outbox WHERE status = ? ORDER BY created_at, id LIMIT ?`),
      webhookCounts: db.prepare(`SELECT status, count(*) AS c FROM webhook_outbox GROUP BY status`),
      horizon: db.prepare(`SELECT coalesce(max(up_to), 0) AS up_to FROM pruned_marks WHERE user_id IN ('${everyone}', ?)`),
      // One statement, so one snapshot for every user asked for.
      replayStates: db.prepare(
        `SELECT u.value AS user_id,
           (SELECT coalesce(max(up_to), 0) FROM pruned_marks WHERE user_id IN ('${everyone}', u.value)) AS up_to,
           (SELECT json_group_array(notification_id) FROM (SELECT notification_id FROM user_state
              WHERE user_id = u.value AND notification_id > ? AND deleted = 1 ORDER BY notification_id)) AS deleted,
           (SELECT json_group_array(name) FROM inapp_mutes WHERE user_id = u.value AND kind = 'type') AS muted_types,
           (SELECT json_group_array(name) FROM inapp_mutes WHERE user_id = u.value AND kind = 'topic') AS muted_topics
         FROM json_each(?) u`,
      ),
    };
    const inTransaction = db.transaction((read: () => unknown) => read());
    this.snapshot = <T>(read: () => T) => inTransaction(read) as T;
    this.pruneSteps = {
      oldBatch: (cutoff) => writer.call('pruneOld', cutoff.toISOString()),
      deadWebhooksBatch: (cutoff) => writer.call('pruneDeadWebhooks', cutoff.getTime()),
      usersOverCap: (perUser) => writer.call('usersOverCap', perUser),
      capEdge: (user, perUser) => writer.call('capEdge', user, perUser),
      userBatch: (user, upTo) => writer.call('pruneUser', user, upTo),
    };
  }

  /** Starts the writer thread (which creates the file and applies the schema), then opens the reader. */
  static async open(file: string, sync: 'full' | 'normal'): Promise<SqliteStore> {
    const writer = await WriterThread.open(file, sync);
    try {
      return new SqliteStore(file, writer);
    } catch (err) {
      await writer.close();
      throw err;
    }
  }

  async insert(n: NewNotification, idempotency?: IdempotencyKey): Promise<InsertResult> {
    const row = newRow(n);
    const written = await this.writer.call('insert', row.write, idempotency);
    return written.status === 'created' ? { status: 'created', notification: created(row, written.id) } : written;
  }

  private readUpTo(user: string): number {
    const r = this.stmts.readUpTo.get(user) as { read_up_to: number } | undefined;
    return r?.read_up_to ?? 0;
  }

  private params(a: Audience) {
    return { user: a.user, topics: JSON.stringify(a.topics) };
  }

  async since(audience: Audience, afterId: number, limit: number): Promise<StoredNotification[]> {
    return this.sinceNow(audience, afterId, limit);
  }

  /** `since`, synchronously, so `catchUp` can read it inside its snapshot. */
  private sinceNow(audience: Audience, afterId: number, limit: number): StoredNotification[] {
    return (this.stmts.since.all({ ...this.params(audience), after: afterId, limit }) as Row[]).map(fromRow);
  }

  async catchUp(audience: Audience, afterId: number, limit: number): Promise<CatchUp> {
    return this.snapshot(() => ({
      head: (this.stmts.lastId.get() as { id: number }).id,
      missed: this.sinceNow(audience, afterId, limit),
      prunedUpTo: (this.stmts.horizon.get(audience.user) as { up_to: number }).up_to,
    }));
  }

  async range(afterId: number, upTo: number): Promise<StoredNotification[]> {
    return (this.stmts.range.all(afterId, upTo) as Row[]).map(fromRow);
  }

  async replayStates(users: readonly string[], afterId: number): Promise<Map<string, ReplayState>> {
    const rows = this.stmts.replayStates.all(afterId, JSON.stringify(users)) as {
      user_id: string;
      up_to: number;
      deleted: string;
      muted_types: string;
      muted_topics: string;
    }[];
    return new Map(
      rows.map((r) => [
        r.user_id,
        {
          prunedUpTo: r.up_to,
          deleted: JSON.parse(r.deleted) as number[],
          mutes: { types: JSON.parse(r.muted_types) as string[], topics: JSON.parse(r.muted_topics) as string[] },
        },
      ]),
    );
  }

  async list(audience: Audience, q: ListQuery): Promise<InboxItem[]> {
    const stmt = this.stmts.list[listIndex({ unread: q.unreadOnly, includeMuted: q.includeMuted ?? false, topicsOnly: q.topicsOnly ?? false })]!;
    // The watermark and the page from one snapshot, so a mark-all-read lands wholly before or after.
    const rows = this.snapshot(
      () =>
        stmt.all({
          ...this.params(audience),
          before: q.before ?? Number.MAX_SAFE_INTEGER,
          upTo: Number.MAX_SAFE_INTEGER,
          limit: q.limit,
          readUpTo: this.readUpTo(audience.user),
        }) as (Row & { read: number; muted: number; delivered_at: string | null; read_at: string | null })[],
    );
    return rows.map((r) => ({
      ...publicView(fromRow(r)),
      read: r.read === 1,
      muted: r.muted === 1,
      deliveredAt: r.delivered_at,
      readAt: r.read_at,
    }));
  }

  /**
   * A user with no mutes that apply to the audience (most users, and every stream of a reconnect storm
   * that has none) pays index range counts and their own read/deleted rows, not one visit per unread
   * notification. Otherwise the count tests each unread notification, as it did before: a type mute
   * can hit any notification and no index has types, and subtracting the muted ones of a topic would
   * visit each of them anyway (whether one is critical is in the row, not the index).
   */
  async unreadCount(audience: Audience, q: CountQuery = {}): Promise<number> {
    const r = this.snapshot(() => {
      const params = this.params(audience);
      const stmts = this.stmts.mutesApply.get(params) ? this.stmts.unreadCountMuted : this.stmts.unreadCount;
      return stmts[Number(q.topicsOnly ?? false)]!.get({
        ...params,
        readUpTo: this.readUpTo(audience.user),
        upTo: q.upTo ?? Number.MAX_SAFE_INTEGER,
        limit: -1,
      }) as { c: number };
    });
    return r.c;
  }

  markRead(user: string, id: number, action: UserAction = unreported()): Promise<boolean> {
    return this.writer.call('markRead', user, id, action);
  }

  async markAllRead(user: string, action = unreportedAll()): Promise<number> {
    // "Up to now" is every id already answered: the reader sees each of them, and the writer only raises
    // a watermark, so a later read-all with a higher id still wins. The jobs need the id before the write,
    // since a function cannot cross into the writer thread.
    const upTo = (this.stmts.lastId.get() as { id: number }).id;
    await this.writer.call('markAllRead', user, upTo, action.at, action.outbox(upTo));
    return upTo;
  }

  remove(user: string, id: number, action: UserAction = unreported()): Promise<boolean> {
    return this.writer.call('remove', user, id, action);
  }

  recordDelivered(receipts: readonly DeliveredReceipt[], outbox: (r: DeliveredReceipt) => WebhookJob[]): Promise<void> {
    // Each receipt's jobs are made here (a function cannot cross threads); the writer keeps those of the
    // receipts it records now, and drops the rest.
    return this.writer.call('recordDelivered', receipts.map((r) => ({ receipt: r, jobs: outbox(r) })));
  }

  async claimWebhooks(limit: number, leaseMs: number): Promise<OutboxEntry[]> {
    return (await this.writer.call('claimWebhooks', limit, leaseMs)).map(outboxEntry);
  }

  webhookDelivered(id: string): Promise<void> {
    return this.writer.call('webhookDelivered', id);
  }

  webhookFailed(id: string, error: string, retryAt: number | null): Promise<void> {
    return this.writer.call('webhookFailed', id, error, retryAt);
  }

  async listWebhooks(status: WebhookStatus, limit: number): Promise<OutboxEntry[]> {
    return (this.stmts.listWebhooks.all(status, limit) as OutboxRow[]).map(outboxEntry);
  }

  retryWebhook(id: string): Promise<boolean> {
    return this.writer.call('retryWebhook', id);
  }

  async webhookCounts(): Promise<Record<WebhookStatus, number>> {
    const counts = { pending: 0, dead: 0 };
    for (const r of this.stmts.webhookCounts.all() as { status: WebhookStatus; c: number }[]) counts[r.status] = r.c;
    return counts;
  }

  async lastId(): Promise<number> {
    return (this.stmts.lastId.get() as { id: number }).id;
  }

  prune(opts: PruneOptions): Promise<number> {
    return prune(this.pruneSteps, opts);
  }

  async prunedUpTo(user: string): Promise<number> {
    return (this.stmts.horizon.get(user) as { up_to: number }).up_to;
  }

  async preferences(user: string): Promise<Preferences | null> {
    const r = this.stmts.preferences.get(user) as { doc: string } | undefined;
    return r ? (JSON.parse(r.doc) as Preferences) : null;
  }

  setPreferences(user: string, p: Preferences, mutes: Mutes): Promise<void> {
    return this.writer.call('setPreferences', user, JSON.stringify(p), mutes);
  }

  addPushSubscription(user: string, sub: PushSubscriptionRecord, maxPerUser: number): Promise<void> {
    return this.writer.call('addPushSubscription', user, sub, maxPerUser);
  }

  removePushSubscription(endpoint: string, user?: string): Promise<boolean> {
    return this.writer.call('removePushSubscription', endpoint, user ?? null);
  }

  async queuePushJobs(now: number, max: number): Promise<number> {
    // A read here first, as for claims: the worker asks after every burst of direct notifications, and
    // without subscribers (or once caught up) a write would queue nothing.
    if (!(this.stmts.pushBehind.get() as { behind: number }).behind) return 0;
    return this.writer.call('queuePushJobs', now, max);
  }

  async claimPushJobs(now: number, limit: number, leaseMs: number): Promise<PushJob[]> {
    // A read here first: the push worker asks after direct notifications, and a claim is a write (a
    // round trip to the writer thread and a place in its group) that most of the time finds nothing.
    if (!this.stmts.anyPushDue.get({ now })) return [];
    return (await this.writer.call('claimPushJobs', now, limit, leaseMs)).map(jobFromRow);
  }

  finishPushJobs(ids: readonly number[]): Promise<void> {
    return this.writer.call('finishPushJobs', [...ids]);
  }

  deferPushJob(id: number, dueAt: number, kind: 'retry' | 'hold'): Promise<void> {
    return this.writer.call('deferPushJob', id, dueAt, kind);
  }

  async ping(): Promise<void> {
    this.writer.check();
    this.stmts.lastId.get();
  }

  async close(): Promise<void> {
    // The writer commits whatever is queued before it stops, so a graceful stop loses no acknowledged publish.
    await this.checkpointer.close();
    this.db.close();
    await this.writer.close();
  }
}
