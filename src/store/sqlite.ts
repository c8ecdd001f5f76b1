import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { projectFile } from '../paths.js';
import type { Audience, InboxItem, NewNotification, StoredNotification } from '../types.js';
import type { IdempotencyKey, InsertResult, ListQuery, Store } from './store.js';


interface Row {
  id: number;
  title: string;
  body: string | null;
  data: string | null;
  type: string | null;
  topic: string | null;
  broadcast: number;
  created_at: string;
  users: string | null;
}

interface Pending {
  n: NewNotification;
  idempotency: IdempotencyKey | undefined;
  resolve: (r: InsertResult) => void;
  reject: (e: unknown) => void;
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
    createdAt: r.created_at,
    users: r.users === null ? null : (JSON.parse(r.users) as string[]),
  };
}

const columns = `n.id, n.title, n.body, n.data, n.type, n.topic, n.broadcast, n.created_at,
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

const isRead = `(n.id <= @readUpTo OR EXISTS (SELECT 1 FROM user_state s WHERE s.user_id = @user AND s.notification_id = n.id AND s.read = 1))`;
const unreadX = `x.id > @readUpTo AND NOT EXISTS (SELECT 1 FROM user_state s WHERE s.user_id = @user AND s.notification_id = x.id AND s.read = 1)`;

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private queue: Pending[] = [];
  private flushScheduled = false;
  private readonly stmts;
  private readonly commitBatch: (batch: Pending[]) => InsertResult[];

  constructor(file: string, sync: 'full' | 'normal') {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // FULL fsyncs the WAL on every commit, so a 201 survives power loss, not just a process crash.
    this.db.pragma(`synchronous = ${sync.toUpperCase()}`);
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(readFileSync(projectFile('schema.sql'), 'utf8'));
    const db = this.db;
    this.stmts = {
      insert: db.prepare(
        `INSERT INTO notifications (title, body, data, type, topic, broadcast, created_at)
         VALUES (@title, @body, @data, @type, @topic, @broadcast, @createdAt)`,
      ),
      recipient: db.prepare(`INSERT OR IGNORE INTO recipients (user_id, notification_id) VALUES (?, ?)`),
      findKey: db.prepare(`SELECT request_hash, notification_id FROM idempotency_keys WHERE publisher = ? AND key = ?`),
      saveKey: db.prepare(
        `INSERT INTO idempotency_keys (publisher, key, request_hash, notification_id, created_at) VALUES (?, ?, ?, ?, ?)`,
      ),
      byId: db.prepare(`SELECT ${columns} FROM notifications n WHERE n.id = ?`),
      since: db.prepare(
        `SELECT ${columns} FROM notifications n WHERE n.id IN (${visibleIds('x.id > @after', 'ASC')}) ORDER BY n.id ASC LIMIT @limit`,
      ),
      range: db.prepare(`SELECT ${columns} FROM notifications n WHERE n.id > ? AND n.id <= ? ORDER BY n.id ASC`),
      list: db.prepare(
        `SELECT ${columns}, ${isRead} AS read FROM notifications n
         WHERE n.id IN (${visibleIds('x.id < @before', 'DESC')}) ORDER BY n.id DESC LIMIT @limit`,
      ),
      listUnread: db.prepare(
        `SELECT ${columns}, 0 AS read FROM notifications n
         WHERE n.id IN (${visibleIds(`x.id < @before AND ${unreadX}`, 'DESC')}) ORDER BY n.id DESC LIMIT @limit`,
      ),
      unreadCount: db.prepare(`SELECT count(*) AS c FROM (${visibleIds(unreadX, 'ASC')})`),
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
      lastId: db.prepare(`SELECT coalesce(max(id), 0) AS id FROM notifications`),
    };
    this.commitBatch = db.transaction((batch: Pending[]) => batch.map((p) => this.insertOne(p)));
  }

  private insertOne({ n, idempotency }: Pending): InsertResult {
    if (idempotency) {
      const prior = this.stmts.findKey.get(idempotency.publisher, idempotency.key) as
        | { request_hash: string; notification_id: number }
        | undefined;
      if (prior) {
        if (prior.request_hash !== idempotency.requestHash) return { status: 'conflict' };
        return { status: 'replayed', notification: fromRow(this.stmts.byId.get(prior.notification_id) as Row) };
      }
    }
    const t = n.target;
    const users = 'users' in t ? [...new Set(t.users)] : null;
    const createdAt = new Date().toISOString();
    const row = {
      title: n.title,
      body: n.body ?? null,
      data: n.data === undefined ? null : JSON.stringify(n.data),
      type: n.type ?? null,
      topic: 'topic' in t ? t.topic : null,
      broadcast: 'broadcast' in t ? 1 : 0,
      createdAt,
    };
    const id = Number(this.stmts.insert.run(row).lastInsertRowid);
    if (users) for (const u of users) this.stmts.recipient.run(u, id);
    if (idempotency) this.stmts.saveKey.run(idempotency.publisher, idempotency.key, idempotency.requestHash, id, createdAt);
    return {
      status: 'created',
      notification: { id, ...row, data: n.data ?? null, broadcast: row.broadcast === 1, users },
    };
  }

  insert(n: NewNotification, idempotency?: IdempotencyKey): Promise<InsertResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ n, idempotency, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // Group commit: every publish parsed in this turn of the event loop shares one transaction
        // (one fsync). Each caller still resolves only after its row is committed.
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    let results: InsertResult[];
    try {
      results = this.commitBatch(batch);
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => p.resolve(results[i]!));
  }

  private readUpTo(user: string): number {
    const r = this.stmts.readUpTo.get(user) as { read_up_to: number } | undefined;
    return r?.read_up_to ?? 0;
  }

  private params(a: Audience) {
    return { user: a.user, topics: JSON.stringify(a.topics) };
  }

  async since(audience: Audience, afterId: number, limit: number): Promise<StoredNotification[]> {
    return (this.stmts.since.all({ ...this.params(audience), after: afterId, limit }) as Row[]).map(fromRow);
  }

  async range(afterId: number, upTo: number): Promise<StoredNotification[]> {
    return (this.stmts.range.all(afterId, upTo) as Row[]).map(fromRow);
  }

  async list(audience: Audience, q: ListQuery): Promise<InboxItem[]> {
    const stmt = q.unreadOnly ? this.stmts.listUnread : this.stmts.list;
    const rows = stmt.all({
      ...this.params(audience),
      before: q.before ?? Number.MAX_SAFE_INTEGER,
      limit: q.limit,
      readUpTo: this.readUpTo(audience.user),
    }) as (Row & { read: number })[];
    return rows.map((r) => {
      const { users: _users, ...rest } = fromRow(r);
      return { ...rest, read: r.read === 1 };
    });
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

  async ping(): Promise<void> {
    this.stmts.lastId.get();
  }

  async close(): Promise<void> {
    // Commit whatever is queued before closing, so a graceful stop loses no acknowledged publish.
    if (this.queue.length > 0) this.flush();
    this.db.close();
  }
}
