import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { projectFile } from '../paths.js';
import { publicView, type Audience, type InboxItem, type Mutes, type NewNotification, type Preferences, type StoredNotification } from '../types.js';
import { Checkpointer } from './checkpointer.js';
import { GroupCommit } from './group-commit.js';
import { everyone, prune, pruneBatch, type PruneSteps } from './prune.js';
import { created, jobFromRow, newRow, type JobRow, type Publish } from './rows.js';
import type { CatchUp, IdempotencyKey, InsertResult, ListQuery, PruneOptions, PushJob, PushSubscriptionRecord, Store } from './store.js';

interface Row {
  id: number;
  title: string;
  body: string | null;
  data: string | null;
  type: string | null;
  topic: string | null;
  broadcast: number;
  critical: number;
  created_at: string;
  users: string | null;
}

function fromRow(r: Row): StoredNotification {
  return {
    id: r.id,
    title: r.title,
    body: r.body,
    data: r.data === null ? null : (JSON.parse(r.data) as Record<string, unknown>),
    type: r.type,
    topic: r.topic,
    broadcast: r.broadcast === 1,
    critical: r.critical === 1,
    createdAt: r.created_at,
    users: r.users === null ? null : (JSON.parse(r.users) as string[]),
  };
}

const columns = `n.id, n.title, n.body, n.data, n.type, n.topic, n.broadcast, n.critical, n.created_at,
  CASE WHEN n.topic IS NULL AND n.broadcast = 0
    THEN (SELECT json_group_array(user_id) FROM recipients r WHERE r.notification_id = n.id) END AS users`;

/**
 * The ids one audience may see, from each of the three disjoint sources (direct, broadcast, topic),
 * each an index range scan bounded by `cond` and `order LIMIT`, so a page never scans a whole history.
 */
function visibleIds(cond: string, order: 'ASC' | 'DESC', extra = ''): string {
  const hidden = `NOT EXISTS (SELECT 1 FROM user_state s WHERE s.user_id = @user AND s.notification_id = x.id AND s.deleted = 1)`;
  const src = (from: string) => `SELECT id FROM (SELECT x.id FROM ${from} AND ${cond} AND ${hidden} ${extra} ORDER BY x.id ${order} LIMIT @limit)`;
  return [
    src(`(SELECT notification_id AS id FROM recipients WHERE user_id = @user) x WHERE 1`),
    src(`notifications x WHERE x.broadcast = 1`),
    src(`notifications x WHERE x.topic IN (SELECT value FROM json_each(@topics))`),
  ].join(' UNION ALL ');
}

/** Whether the notification `id` is muted for @user: the SQL form of `isMuted` (domain/preferences.ts). */
const muted = (id: string) => `EXISTS (SELECT 1 FROM inapp_mutes m JOIN notifications mn ON mn.id = ${id}
  WHERE m.user_id = @user AND mn.critical = 0
    AND ((m.kind = 'type' AND m.name = mn.type) OR (m.kind = 'topic' AND m.name = mn.topic)))`;
const notMutedX = `NOT ${muted('x.id')}`;

/** History, newest first: unread only or not, muted ones left out or listed (flagged). */
function listSql(unread: boolean, includeMuted: boolean): string {
  const cond = ['x.id < @before', ...(unread ? [unreadX] : []), ...(includeMuted ? [] : [notMutedX])].join(' AND ');
  return `SELECT ${columns}, ${unread ? '0' : isRead} AS read, ${includeMuted ? muted('n.id') : '0'} AS muted FROM notifications n
    WHERE n.id IN (${visibleIds(cond, 'DESC')}) ORDER BY n.id DESC LIMIT @limit`;
}

/** How often the checkpointer copies the WAL into the database file: small copies, often. */
const checkpointMs = 250;

const isRead = `(n.id <= @readUpTo OR EXISTS (SELECT 1 FROM user_state s WHERE s.user_id = @user AND s.notification_id = n.id AND s.read = 1))`;
const unreadX = `x.id > @readUpTo AND NOT EXISTS (SELECT 1 FROM user_state s WHERE s.user_id = @user AND s.notification_id = x.id AND s.read = 1)`;

/**
 * Columns added to `notifications` after its first release: CREATE TABLE IF NOT EXISTS leaves an older
 * file's table as it was, and SQLite has no ADD COLUMN IF NOT EXISTS.
 */
function addMissingColumns(db: Database.Database): void {
  const have = new Set((db.pragma('table_info(notifications)') as { name: string }[]).map((c) => c.name));
  if (!have.has('critical')) db.exec(`ALTER TABLE notifications ADD COLUMN critical INTEGER NOT NULL DEFAULT 0`);
}

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly stmts;
  /** Every publish parsed in one turn of the event loop shares one transaction (one fsync). */
  private readonly inserts: GroupCommit<Publish, InsertResult>;
  private readonly pruneSteps: PruneSteps;
  private readonly checkpointer: Checkpointer | undefined;

  constructor(file: string, sync: 'full' | 'normal') {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // FULL fsyncs the WAL on every commit, so a 201 survives power loss, not just a process crash.
    this.db.pragma(`synchronous = ${sync.toUpperCase()}`);
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    if (file !== ':memory:') this.checkpointer = new Checkpointer(file, checkpointMs);
    this.db.exec(readFileSync(projectFile('schema.sql'), 'utf8'));
    addMissingColumns(this.db);
    const db = this.db;
    this.stmts = {
      insert: db.prepare(
        `INSERT INTO notifications (title, body, data, type, topic, broadcast, critical, created_at)
         VALUES (@title, @body, @data, @type, @topic, @broadcast, @critical, @createdAt)`,
      ),
      recipient: db.prepare(`INSERT OR IGNORE INTO recipients (user_id, notification_id) VALUES (?, ?)`),
      // One index probe per recipient: nothing for a user without push subscriptions.
      queuePush: db.prepare(
        `INSERT INTO push_jobs (notification_id, user_id, endpoint, due_at) SELECT ?, user_id, endpoint, ? FROM push_subscriptions WHERE user_id = ?`,
      ),
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
      findKey: db.prepare(`SELECT request_hash, notification_id FROM idempotency_keys WHERE publisher = ? AND key = ?`),
      saveKey: db.prepare(
        `INSERT INTO idempotency_keys (publisher, key, request_hash, notification_id, created_at) VALUES (?, ?, ?, ?, ?)`,
      ),
      byId: db.prepare(`SELECT ${columns} FROM notifications n WHERE n.id = ?`),
      since: db.prepare(
        `SELECT ${columns} FROM notifications n WHERE n.id IN (${visibleIds(`x.id > @after AND ${notMutedX}`, 'ASC')}) ORDER BY n.id ASC LIMIT @limit`,
      ),
      range: db.prepare(`SELECT ${columns} FROM notifications n WHERE n.id > ? AND n.id <= ? ORDER BY n.id ASC`),
      list: db.prepare(listSql(false, false)),
      listUnread: db.prepare(listSql(true, false)),
      listWithMuted: db.prepare(listSql(false, true)),
      listUnreadWithMuted: db.prepare(listSql(true, true)),
      unreadCount: db.prepare(`SELECT count(*) AS c FROM (${visibleIds(`${unreadX} AND ${notMutedX}`, 'ASC')})`),
      preferences: db.prepare(`SELECT doc FROM preferences WHERE user_id = ?`),
      savePreferences: db.prepare(`INSERT INTO preferences (user_id, doc) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET doc = excluded.doc`),
      clearMutes: db.prepare(`DELETE FROM inapp_mutes WHERE user_id = ?`),
      addMute: db.prepare(`INSERT INTO inapp_mutes (user_id, kind, name) VALUES (?, ?, ?)`),
      readUpTo: db.prepare(`SELECT read_up_to FROM read_marks WHERE user_id = ?`),
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
      // Per-notification read rows at or below the watermark say nothing more: drop them.
      clearReads: db.prepare(`DELETE FROM user_state WHERE user_id = ? AND notification_id <= ? AND deleted = 0`),
      // The AUTOINCREMENT counter, not max(id): retention may have deleted the newest rows.
      lastId: db.prepare(`SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'notifications'), 0) AS id`),
      oldIds: db.prepare(`SELECT id FROM notifications WHERE created_at < ? LIMIT ${pruneBatch}`),
      deleteNotifications: db.prepare(`DELETE FROM notifications WHERE id IN (SELECT value FROM json_each(?))`),
      deleteKeys: db.prepare(`DELETE FROM idempotency_keys WHERE notification_id IN (SELECT value FROM json_each(?))`),
      usersOverCap: db.prepare(`SELECT user_id FROM recipients GROUP BY user_id HAVING count(*) > ?`),
      // The newest of a user's direct notifications beyond their cap: it and everything below it go.
      capEdge: db.prepare(`SELECT notification_id AS id FROM recipients WHERE user_id = ? ORDER BY notification_id DESC LIMIT 1 OFFSET ?`),
      userOldIds: db.prepare(
        `SELECT notification_id AS id FROM recipients WHERE user_id = ? AND notification_id <= ? ORDER BY notification_id LIMIT ${pruneBatch}`,
      ),
      deleteRecipients: db.prepare(`DELETE FROM recipients WHERE user_id = ? AND notification_id IN (SELECT value FROM json_each(?))`),
      deleteUserState: db.prepare(`DELETE FROM user_state WHERE user_id = ? AND notification_id IN (SELECT value FROM json_each(?))`),
      orphans: db.prepare(
        `SELECT value AS id FROM json_each(?) WHERE NOT EXISTS (SELECT 1 FROM recipients r WHERE r.notification_id = value)`,
      ),
      raiseHorizon: db.prepare(
        `INSERT INTO pruned_marks (user_id, up_to) VALUES (?, ?)
         ON CONFLICT (user_id) DO UPDATE SET up_to = max(up_to, excluded.up_to)`,
      ),
      horizon: db.prepare(`SELECT coalesce(max(up_to), 0) AS up_to FROM pruned_marks WHERE user_id IN ('${everyone}', ?)`),
    };
    const pruneOld = db.transaction((cutoff: string) => {
      const ids = (this.stmts.oldIds.all(cutoff) as { id: number }[]).map((r) => r.id);
      if (ids.length === 0) return 0;
      const json = JSON.stringify(ids);
      this.stmts.deleteKeys.run(json);
      // recipients and user_state rows go with them (ON DELETE CASCADE).
      this.stmts.deleteNotifications.run(json);
      this.stmts.raiseHorizon.run(everyone, Math.max(...ids));
      return ids.length;
    });
    const pruneUser = db.transaction((user: string, upTo: number) => {
      const ids = (this.stmts.userOldIds.all(user, upTo) as { id: number }[]).map((r) => r.id);
      if (ids.length === 0) return { unlinked: 0, deleted: 0 };
      const json = JSON.stringify(ids);
      this.stmts.deleteRecipients.run(user, json);
      this.stmts.deleteUserState.run(user, json);
      // A notification to several users stays while any of them still has it.
      const orphans = JSON.stringify((this.stmts.orphans.all(json) as { id: number }[]).map((r) => r.id));
      this.stmts.deleteKeys.run(orphans);
      const deleted = this.stmts.deleteNotifications.run(orphans).changes;
      this.stmts.raiseHorizon.run(user, Math.max(...ids));
      return { unlinked: ids.length, deleted };
    });
    this.pruneSteps = {
      oldBatch: async (cutoff) => pruneOld(cutoff.toISOString()),
      usersOverCap: async (perUser) => (this.stmts.usersOverCap.all(perUser) as { user_id: string }[]).map((r) => r.user_id),
      capEdge: async (user, perUser) => (this.stmts.capEdge.get(user, perUser) as { id: number } | undefined)?.id,
      userBatch: async (user, upTo) => pruneUser(user, upTo),
    };
    const commitBatch = db.transaction((batch: Publish[]) => batch.map((p) => this.insertOne(p)));
    this.inserts = new GroupCommit(async (batch) => commitBatch(batch));
  }

  private insertOne({ n, idempotency }: Publish): InsertResult {
    if (idempotency) {
      const prior = this.stmts.findKey.get(idempotency.publisher, idempotency.key) as
        | { request_hash: string; notification_id: number }
        | undefined;
      if (prior) {
        if (prior.request_hash !== idempotency.requestHash) return { status: 'conflict' };
        return { status: 'replayed', notification: fromRow(this.stmts.byId.get(prior.notification_id) as Row) };
      }
    }
    const row = newRow(n);
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
      }).lastInsertRowid,
    );
    for (const u of row.users ?? []) {
      this.stmts.recipient.run(u, id);
      this.stmts.queuePush.run(id, Date.now(), u);
    }
    if (idempotency) this.stmts.saveKey.run(idempotency.publisher, idempotency.key, idempotency.requestHash, id, row.createdAt);
    return { status: 'created', notification: created(row, id) };
  }

  insert(n: NewNotification, idempotency?: IdempotencyKey): Promise<InsertResult> {
    return this.inserts.add({ n, idempotency });
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

  /** `since`, synchronously, so `catchUp` can read it between its other reads with no await. */
  private sinceNow(audience: Audience, afterId: number, limit: number): StoredNotification[] {
    return (this.stmts.since.all({ ...this.params(audience), after: afterId, limit }) as Row[]).map(fromRow);
  }

  async catchUp(audience: Audience, afterId: number, limit: number): Promise<CatchUp> {
    // One snapshot without a transaction: the three reads run back to back, with no await between
    // them, on the one connection every write of this store goes through, so nothing commits between.
    return {
      head: (this.stmts.lastId.get() as { id: number }).id,
      missed: this.sinceNow(audience, afterId, limit),
      prunedUpTo: (this.stmts.horizon.get(audience.user) as { up_to: number }).up_to,
    };
  }

  async range(afterId: number, upTo: number): Promise<StoredNotification[]> {
    return (this.stmts.range.all(afterId, upTo) as Row[]).map(fromRow);
  }

  async list(audience: Audience, q: ListQuery): Promise<InboxItem[]> {
    const { list, listUnread, listWithMuted, listUnreadWithMuted } = this.stmts;
    const stmt = q.includeMuted ? (q.unreadOnly ? listUnreadWithMuted : listWithMuted) : q.unreadOnly ? listUnread : list;
    const rows = stmt.all({
      ...this.params(audience),
      before: q.before ?? Number.MAX_SAFE_INTEGER,
      limit: q.limit,
      readUpTo: this.readUpTo(audience.user),
    }) as (Row & { read: number; muted: number })[];
    return rows.map((r) => ({ ...publicView(fromRow(r)), read: r.read === 1, muted: r.muted === 1 }));
  }

  async unreadCount(audience: Audience): Promise<number> {
    const r = this.stmts.unreadCount.get({
      ...this.params(audience),
      readUpTo: this.readUpTo(audience.user),
      limit: -1,
    }) as { c: number };
    return r.c;
  }

  async markRead(user: string, id: number): Promise<boolean> {
    if (!this.stmts.visible.get({ user, id })) return false;
    this.stmts.setRead.run(user, id);
    return true;
  }

  async markAllRead(user: string): Promise<number> {
    return this.db.transaction(() => {
      const upTo = (this.stmts.lastId.get() as { id: number }).id;
      this.stmts.setReadMark.run(user, upTo);
      this.stmts.clearReads.run(user, upTo);
      return upTo;
    })();
  }

  async remove(user: string, id: number): Promise<boolean> {
    if (!this.stmts.visible.get({ user, id })) return false;
    this.stmts.setDeleted.run(user, id);
    return true;
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

  async setPreferences(user: string, p: Preferences, mutes: Mutes): Promise<void> {
    this.db.transaction(() => {
      this.stmts.savePreferences.run(user, JSON.stringify(p));
      this.stmts.clearMutes.run(user);
      for (const t of mutes.types) this.stmts.addMute.run(user, 'type', t);
      for (const t of mutes.topics) this.stmts.addMute.run(user, 'topic', t);
    })();
  }

  async addPushSubscription(user: string, sub: PushSubscriptionRecord, maxPerUser: number): Promise<void> {
    this.db.transaction(() => {
      this.stmts.saveSubscription.run({ ...sub, user, now: Date.now() });
      this.stmts.trimSubscriptions.run({ user, max: maxPerUser });
    })();
  }

  async removePushSubscription(endpoint: string, user?: string): Promise<boolean> {
    return this.stmts.removeSubscription.run({ endpoint, user: user ?? null }).changes > 0;
  }

  async claimPushJobs(now: number, limit: number, leaseMs: number): Promise<PushJob[]> {
    return this.db.transaction(() => {
      const rows = this.stmts.dueJobs.all({ now, limit }) as JobRow[];
      this.stmts.leaseJobs.run(now + leaseMs, JSON.stringify(rows.map((r) => r.id)));
      return rows.map(jobFromRow);
    })();
  }

  async finishPushJobs(ids: readonly number[]): Promise<void> {
    this.stmts.finishJobs.run(JSON.stringify(ids));
  }

  async deferPushJob(id: number, dueAt: number, kind: 'retry' | 'hold'): Promise<void> {
    this.stmts.deferJob.run({ id, dueAt, retry: kind === 'retry' ? 1 : 0, hold: kind === 'hold' ? 1 : 0 });
  }

  async ping(): Promise<void> {
    this.stmts.lastId.get();
  }

  async close(): Promise<void> {
    // Commit whatever is queued before closing, so a graceful stop loses no acknowledged publish.
    await this.inserts.drain();
    await this.checkpointer?.close();
    this.db.close();
  }
}
