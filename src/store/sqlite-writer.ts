import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { projectFile } from '../paths.js';
import { everyone, pruneBatch } from './prune.js';
import type { JobRow, OutboxRow, WriteRow } from './rows.js';
import { columns, fromRow, lastIdSql, type Row } from './sqlite-rows.js';
import type { Mutes } from '../types.js';
import type { DeliveredReceipt, IdempotencyKey, InsertResult, PushSubscriptionRecord, UserAction, WebhookJob } from './store.js';

/**
 * The one connection that writes, in WAL mode, with the schema applied. It belongs to the writer
 * thread (sqlite-writer-thread.ts): every commit, fsync and commit checkpoint happens there.
 */
export function openWriteConnection(file: string, sync: 'full' | 'normal'): Database.Database {
  mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // FULL fsyncs the WAL on every commit, so a 201 survives power loss, not just a process crash.
  db.pragma(`synchronous = ${sync.toUpperCase()}`);
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  // Each call of a group is a savepoint (sqlite-writer-worker.ts), whose journal SQLite spills to a
  // temp file past 64 KiB (as some calls of the latency scenario did): from then on each page it
  // journals is two more write syscalls. The latency scenario made 19 per event, 13.5 with this. In
  // memory the journal holds the pages one call changes, which calls keep small (prune in batches).
  db.pragma('temp_store = MEMORY');
  db.exec(readFileSync(projectFile('schema.sql'), 'utf8'));
  addMissingColumns(db);
  return db;
}

/**
 * Columns added to `notifications` after its first release, as schema.sql declares them. schema.sql's
 * CREATE TABLE IF NOT EXISTS leaves an older file's table as it is, and SQLite has no ADD COLUMN IF
 * NOT EXISTS: each missing one is added here, on start, in one transaction. Existing rows get NULL (`critical`: 0).
 */
const addedColumns = { url: 'TEXT', icon: 'TEXT', actor: 'TEXT', actions: 'TEXT', critical: 'INTEGER NOT NULL DEFAULT 0' } as const;

function addMissingColumns(db: Database.Database): void {
  const have = new Set((db.pragma('table_info(notifications)') as { name: string }[]).map((c) => c.name));
  db.transaction(() => {
    for (const [name, type] of Object.entries(addedColumns)) {
      if (!have.has(name)) db.exec(`ALTER TABLE notifications ADD COLUMN ${name} ${type}`);
    }
  })();
}

/**
 * Every write of the SQLite store, run in the writer thread. Each public method is one call of the
 * thread's protocol (`WriterCalls`): the thread runs it in a savepoint of the group transaction that
 * commits every call queued with it, and answers with its return value, so a method needs no
 * transaction of its own. Arguments and results cross threads by structured clone: plain data only.
 * A new write is a method here and one `writer.call('method', ...)` line in `SqliteStore`.
 */
export class SqliteWriter {
  private readonly stmts;

  constructor(db: Database.Database) {
    this.stmts = {
      insert: db.prepare(
        `INSERT INTO notifications (title, body, data, type, topic, broadcast, critical, created_at, url, icon, actor, actions)
         VALUES (@title, @body, @data, @type, @topic, @broadcast, @critical, @createdAt, @url, @icon, @actor, @actions)`,
      ),
      recipient: db.prepare(`INSERT OR IGNORE INTO recipients (user_id, notification_id) VALUES (?, ?)`),
      pushCursor: db.prepare(`SELECT last_id FROM push_cursor`),
      // A range of recipients (recipients_notification), one probe of push_subscriptions_user each.
      queuePushes: db.prepare(
        `INSERT INTO push_jobs (notification_id, user_id, endpoint, due_at)
         SELECT r.notification_id, s.user_id, s.endpoint, @now FROM recipients r JOIN push_subscriptions s ON s.user_id = r.user_id
         WHERE r.notification_id > @after AND r.notification_id <= @upTo ORDER BY r.notification_id`,
      ),
      movePushCursor: db.prepare(`UPDATE push_cursor SET last_id = ?`),
      // The notification holding the recipient row just past the bound (recipients_notification).
      recipientEdge: db.prepare(`SELECT notification_id AS id FROM recipients WHERE notification_id > ? ORDER BY notification_id LIMIT 1 OFFSET ?`),
      pushCursorToNewest: db.prepare(`UPDATE push_cursor SET last_id = (${lastIdSql}) WHERE NOT EXISTS (SELECT 1 FROM push_subscriptions)`),
      saveSubscription: db.prepare(
        `INSERT INTO push_subscriptions (endpoint, user_id, p256dh, auth, created_at) VALUES (@endpoint, @user, @p256dh, @auth, @now)
         ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth, created_at = excluded.created_at`,
      ),
      trimSubscriptions: db.prepare(
        `DELETE FROM push_subscriptions WHERE user_id = @user AND endpoint NOT IN
           (SELECT endpoint FROM push_subscriptions WHERE user_id = @user ORDER BY created_at DESC LIMIT @max)`,
      ),
      removeSubscription: db.prepare(`DELETE FROM push_subscriptions WHERE endpoint = @endpoint AND (@user IS NULL OR user_id = @user)`),
      dueJobs: db.prepare(
        `SELECT j.id, j.notification_id, j.user_id, j.endpoint, s.p256dh, s.auth, j.attempts, j.held
         FROM push_jobs j JOIN push_subscriptions s ON s.endpoint = j.endpoint
         WHERE j.due_at <= @now AND j.locked_until <= @now ORDER BY j.due_at, j.id LIMIT @limit`,
      ),
      leaseJobs: db.prepare(`UPDATE push_jobs SET locked_until = ? WHERE id IN (SELECT value FROM json_each(?))`),
      finishJobs: db.prepare(`DELETE FROM push_jobs WHERE id IN (SELECT value FROM json_each(?))`),
      deferJob: db.prepare(
        `UPDATE push_jobs SET due_at = @dueAt, locked_until = 0, attempts = attempts + @retry, held = max(held, @hold) WHERE id = @id`,
      ),
      savePreferences: db.prepare(`INSERT INTO preferences (user_id, doc) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET doc = excluded.doc`),
      clearMutes: db.prepare(`DELETE FROM inapp_mutes WHERE user_id = ?`),
      addMute: db.prepare(`INSERT INTO inapp_mutes (user_id, kind, name) VALUES (?, ?, ?)`),
      findKey: db.prepare(`SELECT request_hash, notification_id FROM idempotency_keys WHERE publisher = ? AND key = ?`),
      saveKey: db.prepare(
        `INSERT INTO idempotency_keys (publisher, key, request_hash, notification_id, created_at) VALUES (?, ?, ?, ?, ?)`,
      ),
      byId: db.prepare(`SELECT ${columns} FROM notifications n WHERE n.id = ?`),
      visible: db.prepare(
        `SELECT 1 FROM notifications n WHERE n.id = @id
           AND (n.broadcast = 1 OR n.topic IS NOT NULL
                OR EXISTS (SELECT 1 FROM recipients r WHERE r.user_id = @user AND r.notification_id = n.id))
           AND NOT EXISTS (SELECT 1 FROM user_state s WHERE s.user_id = @user AND s.notification_id = n.id AND s.deleted = 1)`,
      ),
      setRead: db.prepare(
        `INSERT INTO user_state (user_id, notification_id, read) VALUES (?, ?, 1)
         ON CONFLICT (user_id, notification_id) DO UPDATE SET read = 1`,
      ),
      setDeleted: db.prepare(
        `INSERT INTO user_state (user_id, notification_id, deleted) VALUES (?, ?, 1)
         ON CONFLICT (user_id, notification_id) DO UPDATE SET deleted = 1`,
      ),
      setReadMark: db.prepare(
        `INSERT INTO read_marks (user_id, read_up_to) VALUES (?, ?)
         ON CONFLICT (user_id) DO UPDATE SET read_up_to = max(read_up_to, excluded.read_up_to)`,
      ),
      receiptRead: db.prepare(
        `INSERT INTO receipts (user_id, notification_id, read_at) VALUES (?, ?, ?)
         ON CONFLICT (user_id, notification_id) DO UPDATE SET read_at = coalesce(read_at, excluded.read_at)`,
      ),
      // Only a notification still stored: retention may have deleted it since its delivery.
      receiptDelivered: db.prepare(
        `INSERT INTO receipts (user_id, notification_id, delivered_at) SELECT @user, @id, @at WHERE EXISTS (SELECT 1 FROM notifications WHERE id = @id)
         ON CONFLICT (user_id, notification_id) DO UPDATE SET delivered_at = excluded.delivered_at WHERE delivered_at IS NULL`,
      ),
      logReadAll: db.prepare(`INSERT OR IGNORE INTO read_all_log (user_id, up_to, read_at) VALUES (?, ?, ?)`),
      enqueue: db.prepare(
        `INSERT INTO webhook_outbox (id, endpoint, event, payload, next_attempt_at, created_at) VALUES (@id, @endpoint, @event, @payload, @now, @now)`,
      ),
      claim: db.prepare(
        `UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = @until
         WHERE id IN (SELECT id FROM webhook_outbox WHERE status = 'pending' AND next_attempt_at <= @now ORDER BY next_attempt_at LIMIT @limit)
         RETURNING *`,
      ),
      webhookDone: db.prepare(`DELETE FROM webhook_outbox WHERE id = ?`),
      webhookRetryAt: db.prepare(`UPDATE webhook_outbox SET next_attempt_at = ?, last_error = ? WHERE id = ?`),
      webhookDead: db.prepare(`UPDATE webhook_outbox SET status = 'dead', last_error = ? WHERE id = ?`),
      // Uses webhook_outbox_status (status, created_at).
      pruneDeadWebhooks: db.prepare(
        `DELETE FROM webhook_outbox WHERE id IN (SELECT id FROM webhook_outbox WHERE status = 'dead' AND created_at < ? LIMIT ${pruneBatch})`,
      ),
      retryWebhook: db.prepare(`UPDATE webhook_outbox SET status = 'pending', attempts = 0, next_attempt_at = ? WHERE id = ? AND status = 'dead'`),
      // Per-notification read rows at or below the watermark say nothing more: drop them.
      clearReads: db.prepare(`DELETE FROM user_state WHERE user_id = ? AND notification_id <= ? AND deleted = 0`),
      lastId: db.prepare(lastIdSql),
      oldIds: db.prepare(`SELECT id FROM notifications WHERE created_at < ? LIMIT ${pruneBatch}`),
      deleteNotifications: db.prepare(`DELETE FROM notifications WHERE id IN (SELECT value FROM json_each(?))`),
      pruneReadAllLog: db.prepare(`DELETE FROM read_all_log WHERE up_to <= ?`),
      deleteKeys: db.prepare(`DELETE FROM idempotency_keys WHERE notification_id IN (SELECT value FROM json_each(?))`),
      usersOverCap: db.prepare(`SELECT user_id FROM recipients GROUP BY user_id HAVING count(*) > ?`),
      // The newest of a user's direct notifications beyond their cap: it and everything below it go.
      capEdge: db.prepare(`SELECT notification_id AS id FROM recipients WHERE user_id = ? ORDER BY notification_id DESC LIMIT 1 OFFSET ?`),
      userOldIds: db.prepare(
        `SELECT notification_id AS id FROM recipients WHERE user_id = ? AND notification_id <= ? ORDER BY notification_id LIMIT ${pruneBatch}`,
      ),
      deleteRecipients: db.prepare(`DELETE FROM recipients WHERE user_id = ? AND notification_id IN (SELECT value FROM json_each(?))`),
      deleteUserState: db.prepare(`DELETE FROM user_state WHERE user_id = ? AND notification_id IN (SELECT value FROM json_each(?))`),
      deleteReceipts: db.prepare(`DELETE FROM receipts WHERE user_id = ? AND notification_id IN (SELECT value FROM json_each(?))`),
      orphans: db.prepare(
        `SELECT value AS id FROM json_each(?) WHERE NOT EXISTS (SELECT 1 FROM recipients r WHERE r.notification_id = value)`,
      ),
      raiseHorizon: db.prepare(
        `INSERT INTO pruned_marks (user_id, up_to) VALUES (?, ?)
         ON CONFLICT (user_id) DO UPDATE SET up_to = max(up_to, excluded.up_to)`,
      ),
    };
  }

  /**
   * `row` is made on the main thread (`newRow`), which answers the publisher from it: only the new id
   * comes back, not a copy of the notification it already has.
   */
  insert(row: WriteRow, idempotency: IdempotencyKey | undefined): Written {
    if (idempotency) {
      const prior = this.stmts.findKey.get(idempotency.publisher, idempotency.key) as
        | { request_hash: string; notification_id: number }
        | undefined;
      if (prior) {
        if (prior.request_hash !== idempotency.requestHash) return { status: 'conflict' };
        return { status: 'replayed', notification: fromRow(this.stmts.byId.get(prior.notification_id) as Row) };
      }
    }
    const id = Number(
      this.stmts.insert.run({
        title: row.title,
        body: row.body,
        data: row.dataJson,
        type: row.type,
        topic: row.topic,
        broadcast: row.broadcast ? 1 : 0,
        critical: row.critical ? 1 : 0,
        createdAt: row.createdAt,
        url: row.url,
        icon: row.icon,
        actor: row.actorJson,
        actions: row.actionsJson,
      }).lastInsertRowid,
    );
    for (const u of row.users ?? []) this.stmts.recipient.run(u, id);
    if (idempotency) this.stmts.saveKey.run(idempotency.publisher, idempotency.key, idempotency.requestHash, id, row.createdAt);
    return { status: 'created', id };
  }

  private enqueue(jobs: readonly WebhookJob[]): void {
    const now = Date.now();
    for (const job of jobs) this.stmts.enqueue.run({ ...job, now });
  }

  markRead(user: string, id: number, action: UserAction): boolean {
    if (!this.stmts.visible.get({ user, id })) return false;
    this.stmts.setRead.run(user, id);
    this.stmts.receiptRead.run(user, id, action.at);
    this.enqueue(action.outbox);
    return true;
  }

  /** `upTo` is the caller's newest answered id (the jobs that report it were made from it). */
  markAllRead(user: string, upTo: number, at: string, jobs: WebhookJob[]): void {
    this.stmts.setReadMark.run(user, upTo);
    this.stmts.clearReads.run(user, upTo);
    this.stmts.logReadAll.run(user, upTo, at);
    this.enqueue(jobs);
  }

  remove(user: string, id: number, action: UserAction): boolean {
    if (!this.stmts.visible.get({ user, id })) return false;
    this.stmts.setDeleted.run(user, id);
    this.enqueue(action.outbox);
    return true;
  }

  /** Each receipt with the jobs that report it, kept only when the receipt is recorded now (the first time). */
  recordDelivered(receipts: { receipt: DeliveredReceipt; jobs: WebhookJob[] }[]): void {
    for (const { receipt, jobs } of receipts) if (this.stmts.receiptDelivered.run(receipt).changes > 0) this.enqueue(jobs);
  }

  claimWebhooks(limit: number, leaseMs: number): OutboxRow[] {
    const now = Date.now();
    return this.stmts.claim.all({ now, until: now + leaseMs, limit }) as OutboxRow[];
  }

  webhookDelivered(id: string): void {
    this.stmts.webhookDone.run(id);
  }

  webhookFailed(id: string, error: string, retryAt: number | null): void {
    if (retryAt === null) this.stmts.webhookDead.run(error, id);
    else this.stmts.webhookRetryAt.run(retryAt, error, id);
  }

  retryWebhook(id: string): boolean {
    return this.stmts.retryWebhook.run(Date.now(), id).changes > 0;
  }

  /** `doc`: the preferences document as JSON; `mutes`: what it mutes in-app, replacing the user's rows. */
  setPreferences(user: string, doc: string, mutes: Mutes): void {
    this.stmts.savePreferences.run(user, doc);
    this.stmts.clearMutes.run(user);
    for (const t of mutes.types) this.stmts.addMute.run(user, 'type', t);
    for (const t of mutes.topics) this.stmts.addMute.run(user, 'topic', t);
  }

  addPushSubscription(user: string, sub: PushSubscriptionRecord, maxPerUser: number): void {
    // While nobody is subscribed the store skips `queuePushJobs` and the cursor lags: the first subscription
    // moves it to the newest id, as a queue run just before would have (with no subscription it queues nothing).
    this.stmts.pushCursorToNewest.run();
    this.stmts.saveSubscription.run({ ...sub, user, now: Date.now() });
    this.stmts.trimSubscriptions.run({ user, max: maxPerUser });
  }

  /** `user` null: whoever's it is. */
  removePushSubscription(endpoint: string, user: string | null): boolean {
    return this.stmts.removeSubscription.run({ endpoint, user }).changes > 0;
  }

  /** `Store.queuePushJobs`. Returns how far the cursor moved. */
  queuePushJobs(now: number, max: number): number {
    const after = (this.stmts.pushCursor.get() as { last_id: number }).last_id;
    const edge = (this.stmts.recipientEdge.get(after, max) as { id: number } | undefined)?.id ?? Infinity;
    // Short of the edge's notification, unless it is the first: a notification's jobs are never split.
    const upTo = Math.min(after + max, (this.stmts.lastId.get() as { id: number }).id, Math.max(edge - 1, after + 1));
    if (upTo <= after) return 0;
    this.stmts.queuePushes.run({ after, upTo, now });
    this.stmts.movePushCursor.run(upTo);
    return upTo - after;
  }

  claimPushJobs(now: number, limit: number, leaseMs: number): JobRow[] {
    const rows = this.stmts.dueJobs.all({ now, limit }) as JobRow[];
    this.stmts.leaseJobs.run(now + leaseMs, JSON.stringify(rows.map((r) => r.id)));
    return rows;
  }

  finishPushJobs(ids: number[]): void {
    this.stmts.finishJobs.run(JSON.stringify(ids));
  }

  deferPushJob(id: number, dueAt: number, kind: 'retry' | 'hold'): void {
    this.stmts.deferJob.run({ id, dueAt, retry: kind === 'retry' ? 1 : 0, hold: kind === 'hold' ? 1 : 0 });
  }

  /** `PruneSteps.deadWebhooksBatch`; `cutoff` in ms since the epoch, as `created_at`. */
  pruneDeadWebhooks(cutoff: number): number {
    return this.stmts.pruneDeadWebhooks.run(cutoff).changes;
  }

  /** One retention batch by age (`PruneSteps.oldBatch`); `cutoff` is an ISO 8601 instant. */
  pruneOld(cutoff: string): number {
    const ids = (this.stmts.oldIds.all(cutoff) as { id: number }[]).map((r) => r.id);
    if (ids.length === 0) return 0;
    const json = JSON.stringify(ids);
    this.stmts.deleteKeys.run(json);
    // recipients and user_state rows go with them (ON DELETE CASCADE).
    this.stmts.deleteNotifications.run(json);
    this.stmts.raiseHorizon.run(everyone, Math.max(...ids));
    this.stmts.pruneReadAllLog.run(Math.max(...ids));
    return ids.length;
  }

  // The two reads of a cap run are here too: a GROUP BY over every recipient must not stall the event loop.
  usersOverCap(perUser: number): string[] {
    return (this.stmts.usersOverCap.all(perUser) as { user_id: string }[]).map((r) => r.user_id);
  }

  capEdge(user: string, perUser: number): number | undefined {
    return (this.stmts.capEdge.get(user, perUser) as { id: number } | undefined)?.id;
  }

  /** One retention batch of a user's cap (`PruneSteps.userBatch`). */
  pruneUser(user: string, upTo: number): { unlinked: number; deleted: number } {
    const ids = (this.stmts.userOldIds.all(user, upTo) as { id: number }[]).map((r) => r.id);
    if (ids.length === 0) return { unlinked: 0, deleted: 0 };
    const json = JSON.stringify(ids);
    this.stmts.deleteRecipients.run(user, json);
    this.stmts.deleteUserState.run(user, json);
    this.stmts.deleteReceipts.run(user, json);
    // A notification to several users stays while any of them still has it.
    const orphans = JSON.stringify((this.stmts.orphans.all(json) as { id: number }[]).map((r) => r.id));
    this.stmts.deleteKeys.run(orphans);
    const deleted = this.stmts.deleteNotifications.run(orphans).changes;
    this.stmts.raiseHorizon.run(user, Math.max(...ids));
    return { unlinked: ids.length, deleted };
  }
}

/** What the writer answers an insert: a new notification's id, or the store's answer to a retry. */
export type Written = { status: 'created'; id: number } | Exclude<InsertResult, { status: 'created' }>;

/** The writer thread's calls, by name: `SqliteWriter`'s public methods (private members are not keys). */
export type WriterCalls = {
  [M in keyof SqliteWriter]: SqliteWriter[M];
};
