import { readFileSync } from 'node:fs';
import pg from 'pg';
import { printable } from '../config.js';
import { projectFile } from '../paths.js';
import { publicView, type Audience, type InboxItem, type Mutes, type NewNotification, type Preferences, type StoredNotification } from '../types.js';
import { GroupCommit } from './group-commit.js';
import { everyone, prune, pruneBatch, type PruneSteps } from './prune.js';
import { created, jobFromRow, listIndex, listQueries, newRow, outboxEntry, unreported, unreportedAll, type JobRow, type ListFlags, type OutboxRow, type Publish, type WriteRow } from './rows.js';
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

/** What pg returns for a notification: `created_at` as a Date; `data` and `users` are parsed already. */
type Row = Omit<StoredNotification, 'createdAt'> & { created_at: Date };

/** Most publishes committed in one transaction: bounds how long the id lock is held. */
const maxBatch = 200;
/** Serialises schema application across instances that start at the same time. */
const schemaLockKey = 0x4e524c44;

const int8Oid = 20;
// Ids and counts are int8, which pg returns as strings so as not to lose precision past 2^53;
// ids would need 285 years at a million notifications a second to get there.
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === int8Oid ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

function fromRow(r: Row): StoredNotification {
  return {
    id: r.id,
    title: r.title,
    body: r.body,
    data: r.data,
    type: r.type,
    topic: r.topic,
    broadcast: r.broadcast,
    critical: r.critical,
    createdAt: r.created_at.toISOString(),
    url: r.url,
    icon: r.icon,
    actor: r.actor,
    actions: r.actions,
    users: r.users,
  };
}

// COLLATE "C": recipients are listed in byte order, as SQLite lists them, whatever the database locale.
const columns = `n.id, n.title, n.body, n.data, n.type, n.topic, n.broadcast, n.critical, n.created_at, n.url, n.icon, n.actor, n.actions,
  CASE WHEN n.topic IS NULL AND NOT n.broadcast
    THEN (SELECT coalesce(array_agg(r.user_id ORDER BY r.user_id COLLATE "C"), '{}') FROM recipients r
          WHERE r.notification_id = n.id) END AS users`;

// Every audience query takes $1 = user and $2 = topics (text[]); the rest are numbered per query.
const readUpTo = `coalesce((SELECT read_up_to FROM read_marks WHERE user_id = $1), 0)`;
const isRead = `(n.id <= ${readUpTo} OR EXISTS (SELECT 1 FROM user_state s WHERE s.user_id = $1 AND s.notification_id = n.id AND s.read))`;
const unreadX = `x.id > ${readUpTo} AND NOT EXISTS (SELECT 1 FROM user_state s WHERE s.user_id = $1 AND s.notification_id = x.id AND s.read)`;

/** Whether the notification `id` is muted for $1: the SQL form of `isMuted` (domain/preferences.ts). */
const muted = (id: string) => `EXISTS (SELECT 1 FROM inapp_mutes m JOIN notifications mn ON mn.id = ${id}
  WHERE m.user_id = $1 AND NOT mn.critical
    AND ((m.kind = 'type' AND m.name = mn.type) OR (m.kind = 'topic' AND m.name = mn.topic)))`;
const notMutedX = `NOT ${muted('x.id')}`;


/**
 * The ids one audience may see, from each of the three disjoint sources (direct, broadcast, topic),
 * each an index range scan bounded by `cond` and `order LIMIT`, so a page never scans a whole history.
 * `topicsOnly`: the topic source alone.
 */
function visibleIds(cond: string, order: 'ASC' | 'DESC', limit: string, topicsOnly = false): string {
  const hidden = `NOT EXISTS (SELECT 1 FROM user_state s WHERE s.user_id = $1 AND s.notification_id = x.id AND s.deleted)`;
  const src = (from: string) => `(SELECT x.id FROM ${from} AND ${cond} AND ${hidden} ORDER BY x.id ${order} LIMIT ${limit})`;
  const topics = src(`notifications x WHERE x.topic = ANY($2::text[])`);
  if (topicsOnly) return topics;
  return [
    src(`(SELECT notification_id AS id FROM recipients WHERE user_id = $1) x WHERE true`),
    src(`notifications x WHERE x.broadcast`),
    topics,
  ].join(' UNION ALL ');
}

/**
 * The unread count ($3: of ids up to it) as SQLite counts it (sqlite.ts, `unreadCountSql`): an index
 * range count per source, less the user's own read or deleted rows in that range (few: a read-all
 * clears the read ones below its mark), not a visit of each unread notification (30,000 unread
 * broadcasts took 45 ms that way, against about 5 ms). Null when one of the user's mutes applies to
 * the audience: mutes are not applied here. Not one statement with `unreadCountMuted`: planning that
 * one too cost a user without mutes (most, and every stream of a reconnect storm) 2 ms more.
 */
function unreadCountSql(topicsOnly: boolean): string {
  const inRange = (id: string) => `${id} > m.lo AND ${id} <= $3`;
  // `count`: the source's ids in range; `holds`: whether the source holds notification n (the sources are disjoint).
  const topic = {
    count: `SELECT count(*) FROM notifications x WHERE x.topic = ANY($2::text[]) AND ${inRange('x.id')}`,
    holds: `n.topic = ANY($2::text[])`,
  };
  const sources = topicsOnly
    ? [topic]
    : [
        {
          count: `SELECT count(*) FROM recipients x WHERE x.user_id = $1 AND ${inRange('x.notification_id')}`,
          holds: `EXISTS (SELECT 1 FROM recipients r WHERE r.user_id = $1 AND r.notification_id = n.id)`,
        },
        { count: `SELECT count(*) FROM notifications x WHERE x.broadcast AND ${inRange('x.id')}`, holds: 'n.broadcast' },
        topic,
      ];
  const excepted = `SELECT count(*) FROM user_state s JOIN notifications n ON n.id = s.notification_id
    WHERE s.user_id = $1 AND ${inRange('s.notification_id')} AND (s.read OR s.deleted) AND (${sources.map((x) => x.holds).join(' OR ')})`;
  const byRanges = `SELECT ${sources.map((x) => `(${x.count})`).join(' + ')} - (${excepted}) FROM (SELECT ${readUpTo} AS lo) m`;
  // A topic mute can only hit a notification of that topic: one the audience does not follow changes nothing.
  const mutesApply = `EXISTS (SELECT 1 FROM inapp_mutes WHERE user_id = $1 AND (kind = 'type' OR name = ANY($2::text[])))`;
  return `SELECT CASE WHEN ${mutesApply} THEN NULL ELSE (${byRanges}) END AS c`;
}

/** Upserts one user_state flag if the user may see the notification ($1 user, $2 id); returns a row if it did. */
function setFlag(flag: 'read' | 'deleted'): string {
  return `INSERT INTO user_state (user_id, notification_id, ${flag})
    SELECT $1, n.id, true FROM notifications n WHERE n.id = $2
      AND (n.broadcast OR n.topic IS NOT NULL
           OR EXISTS (SELECT 1 FROM recipients r WHERE r.user_id = $1 AND r.notification_id = n.id))
      AND NOT EXISTS (SELECT 1 FROM user_state s WHERE s.user_id = $1 AND s.notification_id = n.id AND s.deleted)
    ON CONFLICT (user_id, notification_id) DO UPDATE SET ${flag} = true
    RETURNING 1`;
}

/** A user's receipts of n: the read time is that of their own read or of the first read-all that covered n, whichever came first. */
const receipts = `(SELECT delivered_at FROM receipts rc WHERE rc.user_id = $1 AND rc.notification_id = n.id) AS delivered_at,
  (SELECT min(t) FROM (SELECT read_at AS t FROM receipts rc WHERE rc.user_id = $1 AND rc.notification_id = n.id
    UNION ALL (SELECT read_at FROM read_all_log l WHERE l.user_id = $1 AND l.up_to >= n.id ORDER BY l.up_to LIMIT 1)) r) AS read_at`;

/** History ($3 before, $4 limit), newest first: unread only or not, muted ones left out or listed (flagged), the topics only or everything. */
function listSql({ unread, includeMuted, topicsOnly }: ListFlags): string {
  const cond = ['x.id < $3', ...(unread ? [unreadX] : []), ...(includeMuted ? [] : [notMutedX])].join(' AND ');
  return `SELECT ${columns}, ${unread ? 'false' : isRead} AS read, ${includeMuted ? muted('n.id') : 'false'} AS muted, ${receipts} FROM notifications n
    WHERE n.id IN (${visibleIds(cond, 'DESC', '$4', topicsOnly)}) ORDER BY n.id DESC LIMIT $4`;
}

/**
 * Inserts webhook jobs given as column arrays from $first on (id, endpoint, event, payload, then the
 * time in ms), when `cond` holds: in the statement of the change they report, so they commit with it.
 */
function insertJobs(first: number, cond: string): string {
  const [id, endpoint, event, payload, now] = [0, 1, 2, 3, 4].map((i) => `$${first + i}`);
  return `INSERT INTO webhook_outbox (id, endpoint, event, payload, next_attempt_at, created_at)
    SELECT j.id, j.endpoint, j.event, j.payload, ${now}::bigint, ${now}::bigint
    FROM unnest(${id}::text[], ${endpoint}::text[], ${event}::text[], ${payload}::text[]) AS j (id, endpoint, event, payload)
    WHERE ${cond}`;
}

/** The column arrays `insertJobs` takes. */
function jobColumns(jobs: readonly WebhookJob[]): unknown[] {
  return [jobs.map((j) => j.id), jobs.map((j) => j.endpoint), jobs.map((j) => j.event), jobs.map((j) => j.payload), Date.now()];
}

/** Raises a horizon in `pruned_marks` ($1 = `everyone` for the age horizon, or a user) to the max id of `ids`. */
const raiseHorizon = (ids: string) => `INSERT INTO pruned_marks (user_id, up_to) SELECT $1, max(id) FROM ${ids} HAVING count(*) > 0
    ON CONFLICT (user_id) DO UPDATE SET up_to = greatest(pruned_marks.up_to, excluded.up_to)`;

/** An audience's notifications after $3, oldest first, at most $4: alone (`since`) and inside `catchUp`. */
const sinceQuery = `SELECT ${columns} FROM notifications n WHERE n.id IN (${visibleIds(`x.id > $3 AND ${notMutedX}`, 'ASC', '$4')})
    ORDER BY n.id ASC LIMIT $4`;

const sql = {
  // Each prune batch is one statement, so its deletes and its horizon commit together. SKIP LOCKED:
  // instances pruning at the same time take different rows instead of queueing on each other.
  pruneOld: `WITH doomed AS (SELECT id FROM notifications WHERE created_at < $2 ORDER BY id LIMIT ${pruneBatch} FOR UPDATE SKIP LOCKED),
    keys AS (DELETE FROM idempotency_keys WHERE notification_id IN (SELECT id FROM doomed)),
    gone AS (DELETE FROM notifications WHERE id IN (SELECT id FROM doomed) RETURNING id),
    mark AS (${raiseHorizon('gone')}),
    log AS (DELETE FROM read_all_log WHERE up_to <= (SELECT max(id) FROM gone))
    SELECT count(*) AS n FROM gone`,
  pruneDeadWebhooks: `WITH gone AS (DELETE FROM webhook_outbox WHERE id IN
      (SELECT id FROM webhook_outbox WHERE status = 'dead' AND created_at < $1 LIMIT ${pruneBatch} FOR UPDATE SKIP LOCKED) RETURNING 1)
    SELECT count(*)::int AS n FROM gone`,
  usersOverCap: `SELECT user_id FROM recipients GROUP BY user_id HAVING count(*) > $1`,
  // The newest of a user's direct notifications beyond their cap: it and everything below it go.
  capEdge: `SELECT notification_id AS id FROM recipients WHERE user_id = $1 ORDER BY notification_id DESC LIMIT 1 OFFSET $2`,
  // One batch of a user's cap: their recipient rows and state go; a notification goes only when no
  // other user still has it.
  pruneUser: `WITH doomed AS (SELECT notification_id AS id FROM recipients WHERE user_id = $1 AND notification_id <= $2
                              ORDER BY notification_id LIMIT ${pruneBatch}),
    unlinked AS (DELETE FROM recipients WHERE user_id = $1 AND notification_id IN (SELECT id FROM doomed) RETURNING notification_id AS id),
    state AS (DELETE FROM user_state WHERE user_id = $1 AND notification_id IN (SELECT id FROM doomed)),
    receipts AS (DELETE FROM receipts WHERE user_id = $1 AND notification_id IN (SELECT id FROM doomed)),
    orphans AS (SELECT d.id FROM doomed d
                WHERE NOT EXISTS (SELECT 1 FROM recipients r WHERE r.notification_id = d.id AND r.user_id <> $1)),
    keys AS (DELETE FROM idempotency_keys WHERE notification_id IN (SELECT id FROM orphans)),
    gone AS (DELETE FROM notifications WHERE id IN (SELECT id FROM orphans) RETURNING id),
    mark AS (${raiseHorizon('unlinked')})
    SELECT (SELECT count(*) FROM unlinked) AS unlinked, (SELECT count(*) FROM gone) AS deleted`,
  horizon: `SELECT coalesce(max(up_to), 0) AS up_to FROM pruned_marks WHERE user_id IN ('${everyone}', $1)`,
  since: sinceQuery,
  // One statement, so one snapshot: the head, the horizon and the page (none: one row of NULLs).
  catchUp: `SELECT h.last_id AS head, p.up_to AS pruned_up_to, m.*
    FROM (SELECT last_id FROM id_counter) h
    CROSS JOIN (SELECT coalesce(max(up_to), 0) AS up_to FROM pruned_marks WHERE user_id IN ('${everyone}', $1)) p
    LEFT JOIN LATERAL (${sinceQuery}) m ON true
    ORDER BY m.id ASC`,
  range: `SELECT ${columns} FROM notifications n WHERE n.id > $1 AND n.id <= $2 ORDER BY n.id ASC`,
  // One statement, so one snapshot for every user asked for.
  replayStates: `SELECT u AS user_id,
      (SELECT coalesce(max(up_to), 0) FROM pruned_marks WHERE user_id IN ('${everyone}', u)) AS up_to,
      ARRAY(SELECT notification_id FROM user_state WHERE user_id = u AND notification_id > $2 AND deleted
            ORDER BY notification_id) AS deleted,
      ARRAY(SELECT name FROM inapp_mutes WHERE user_id = u AND kind = 'type') AS muted_types,
      ARRAY(SELECT name FROM inapp_mutes WHERE user_id = u AND kind = 'topic') AS muted_topics
    FROM unnest($1::text[]) u`,
  byIds: `SELECT ${columns} FROM notifications n WHERE n.id = ANY($1::bigint[])`,
  // Indexed by `listIndex`.
  list: listQueries(listSql),
  // $3: only ids up to it. Each: [everything the audience sees, its topics only]. `unreadCount` for a
  // user none of whose mutes apply (null otherwise); `unreadCountMuted`, which tests every unread notification, for the others.
  unreadCount: [false, true].map(unreadCountSql),
  unreadCountMuted: [false, true].map(
    (topicsOnly) => `SELECT count(*) AS c FROM (${visibleIds(`${unreadX} AND x.id <= $3 AND ${notMutedX}`, 'ASC', 'ALL', topicsOnly)}) v`,
  ),
  preferences: `SELECT doc FROM preferences WHERE user_id = $1`,
  // One statement, so the document and its mutes change together. Only mutes no longer wanted are
  // deleted: a row deleted and inserted again by one statement would collide with itself.
  setPreferences: `WITH saved AS (INSERT INTO preferences (user_id, doc) VALUES ($1, $2::json)
                                  ON CONFLICT (user_id) DO UPDATE SET doc = excluded.doc),
    wanted AS (SELECT 'type' AS kind, t AS name FROM unnest($3::text[]) t UNION ALL SELECT 'topic', t FROM unnest($4::text[]) t),
    dropped AS (DELETE FROM inapp_mutes m WHERE m.user_id = $1
                AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.kind = m.kind AND w.name = m.name))
    INSERT INTO inapp_mutes (user_id, kind, name) SELECT $1, kind, name FROM wanted ON CONFLICT DO NOTHING`,
  // $3 the read time, then the jobs' columns: all or nothing, with the flag.
  markRead: `WITH flagged AS (${setFlag('read')}),
    receipt AS (INSERT INTO receipts (user_id, notification_id, read_at) SELECT $1, $2, $3::timestamptz FROM flagged
                ON CONFLICT (user_id, notification_id) DO UPDATE SET read_at = coalesce(receipts.read_at, excluded.read_at)),
    jobs AS (${insertJobs(4, 'EXISTS (SELECT 1 FROM flagged)')})
    SELECT count(*) AS n FROM flagged`,
  remove: `WITH flagged AS (${setFlag('deleted')}),
    jobs AS (${insertJobs(3, 'EXISTS (SELECT 1 FROM flagged)')})
    SELECT count(*) AS n FROM flagged`,
  // Jobs for every receipt given ($4 on, with $9 users and $10 ids): only those of the receipts recorded now are kept.
  recordDelivered: `WITH fresh AS (
      INSERT INTO receipts (user_id, notification_id, delivered_at)
      SELECT v.u, v.i, v.a FROM unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS v (u, i, a)
      WHERE EXISTS (SELECT 1 FROM notifications n WHERE n.id = v.i)
      ON CONFLICT (user_id, notification_id) DO UPDATE SET delivered_at = excluded.delivered_at WHERE receipts.delivered_at IS NULL
      RETURNING user_id, notification_id
    ), jobs AS (
      INSERT INTO webhook_outbox (id, endpoint, event, payload, next_attempt_at, created_at)
      SELECT j.id, j.endpoint, j.event, j.payload, $8::bigint, $8::bigint
      FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $9::text[], $10::bigint[]) AS j (id, endpoint, event, payload, u, i)
      JOIN fresh f ON f.user_id = j.u AND f.notification_id = j.i
    )
    SELECT count(*) AS n FROM fresh`,
  // SKIP LOCKED: instances claiming at once take different jobs instead of queueing on each other.
  claimWebhooks: `UPDATE webhook_outbox o SET attempts = o.attempts + 1, next_attempt_at = $2
    FROM (SELECT id FROM webhook_outbox WHERE status = 'pending' AND next_attempt_at <= $1
          ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) due
    WHERE o.id = due.id
    RETURNING o.*`,
  webhookDone: `DELETE FROM webhook_outbox WHERE id = $1`,
  webhookRetryAt: `UPDATE webhook_outbox SET next_attempt_at = $1, last_error = $2 WHERE id = $3`,
  webhookDead: `UPDATE webhook_outbox SET status = 'dead', last_error = $1 WHERE id = $2`,
  listWebhooks: `SELECT * FROM webhook_outbox WHERE status = $1 ORDER BY created_at, id LIMIT $2`,
  retryWebhook: `UPDATE webhook_outbox SET status = 'pending', attempts = 0, next_attempt_at = $1 WHERE id = $2 AND status = 'dead'`,
  webhookCounts: `SELECT status, count(*) AS c FROM webhook_outbox GROUP BY status`,
  // One statement, so the watermark and the cleanup agree on one head. Per-notification read rows at
  // or below the watermark say nothing more: they go.
  markAllRead: `WITH head AS (SELECT last_id FROM id_counter),
    mark AS (INSERT INTO read_marks (user_id, read_up_to) SELECT $1, last_id FROM head
             ON CONFLICT (user_id) DO UPDATE SET read_up_to = greatest(read_marks.read_up_to, excluded.read_up_to)),
    cleared AS (DELETE FROM user_state WHERE user_id = $1 AND notification_id <= (SELECT last_id FROM head) AND NOT deleted),
    logged AS (INSERT INTO read_all_log (user_id, up_to, read_at) SELECT $1, last_id, $2 FROM head ON CONFLICT DO NOTHING)
    SELECT last_id FROM head`,
  saveSubscription: `WITH saved AS (
      INSERT INTO push_subscriptions (endpoint, user_id, p256dh, auth, created_at) VALUES ($1, $2, $3, $4, $5)
      ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth, created_at = excluded.created_at)
    DELETE FROM push_subscriptions WHERE user_id = $2 AND endpoint IN
      (SELECT endpoint FROM push_subscriptions WHERE user_id = $2 AND endpoint <> $1 ORDER BY created_at DESC OFFSET $6 - 1)`,
  removeSubscription: `DELETE FROM push_subscriptions WHERE endpoint = $1 AND ($2::text IS NULL OR user_id = $2)`,
  // SKIP LOCKED: instances claiming at the same time take different jobs instead of queueing on each other.
  claimJobs: `WITH due AS (
      SELECT id FROM push_jobs WHERE due_at <= $1 AND locked_until <= $1 ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED),
    leased AS (UPDATE push_jobs j SET locked_until = $3 FROM due WHERE j.id = due.id RETURNING j.*)
    SELECT l.id, l.notification_id, l.user_id, l.endpoint, s.p256dh, s.auth, l.attempts, l.held
    FROM leased l JOIN push_subscriptions s ON s.endpoint = l.endpoint ORDER BY l.due_at, l.id`,
  pushBehind: `SELECT (SELECT last_id FROM push_cursor) < (SELECT last_id FROM id_counter) AS behind`,
  lockPushCursor: `SELECT last_id FROM push_cursor FOR UPDATE`,
  // $1 the cursor as locked, $2 the most ids (and recipients) to take, $3 the jobs' due time; the edge
  // as in SqliteWriter.queuePushJobs. The newest committed id is id_counter's committed value, read
  // without its lock: publishers update it in the transaction that inserts and commit in id order
  // (they hold its lock to COMMIT), so a snapshot that sees it at N sees every notification up to N,
  // and no later commit can add one below N: the range has no gap. This statement's snapshot is taken
  // after the cursor's lock was granted, so it sees the last mover's commit and a counter at or above
  // $1: the cursor never moves back.
  queuePushes: `WITH edge AS (SELECT notification_id AS id FROM recipients WHERE notification_id > $1 ORDER BY notification_id OFFSET $2 LIMIT 1),
    bounds AS (SELECT least($1::bigint + $2, c.last_id, (SELECT greatest(id - 1, $1 + 1) FROM edge)) AS up_to FROM id_counter c),
    queued AS (
      INSERT INTO push_jobs (notification_id, user_id, endpoint, due_at)
      SELECT r.notification_id, s.user_id, s.endpoint, $3 FROM recipients r JOIN push_subscriptions s ON s.user_id = r.user_id
      WHERE r.notification_id > $1 AND r.notification_id <= (SELECT up_to FROM bounds) ORDER BY r.notification_id),
    moved AS (UPDATE push_cursor SET last_id = (SELECT up_to FROM bounds))
    SELECT up_to FROM bounds`,
  finishJobs: `DELETE FROM push_jobs WHERE id = ANY($1::bigint[])`,
  deferJob: `UPDATE push_jobs SET due_at = $2, locked_until = 0, attempts = attempts + $3, held = held OR $4 WHERE id = $1`,
  // The counter is updated in the transaction that inserts, so its committed value is the newest committed id.
  lastId: `SELECT last_id FROM id_counter`,
  lockCounter: `SELECT last_id FROM id_counter FOR UPDATE`,
  findKeys: `SELECT k.publisher, k.key, k.request_hash, k.notification_id
    FROM idempotency_keys k JOIN unnest($1::text[], $2::text[]) AS q (publisher, key)
      ON k.publisher = q.publisher AND k.key = q.key`,
  // A whole batch in one statement (one round trip while the id lock is held): the rows of every
  // table as column arrays, then the counter. Empty arrays insert nothing.
  insertBatch: `WITH notified AS (
      INSERT INTO notifications (id, title, body, data, type, topic, broadcast, created_at, url, icon, actor, actions, critical)
      SELECT id, title, body, data::json, type, topic, broadcast, created_at, url, icon, actor::json, actions::json, critical
      FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::boolean[], $8::timestamptz[],
                  $17::text[], $18::text[], $19::text[], $20::text[], $21::boolean[])
        AS v (id, title, body, data, type, topic, broadcast, created_at, url, icon, actor, actions, critical)
    ), recipients_added AS (
      INSERT INTO recipients (user_id, notification_id) SELECT * FROM unnest($9::text[], $10::bigint[])
    ), keys_added AS (
      INSERT INTO idempotency_keys (publisher, key, request_hash, notification_id, created_at)
      SELECT * FROM unnest($11::text[], $12::text[], $13::text[], $14::bigint[], $15::timestamptz[])
    )
    UPDATE id_counter SET last_id = $16`,
};

/** Column arrays of one batch: one statement inserts them all (unnest), whatever the batch size. */
class BatchRows {
  readonly n = {
    id: [] as number[],
    title: [] as string[],
    body: [] as (string | null)[],
    data: [] as (string | null)[],
    type: [] as (string | null)[],
    topic: [] as (string | null)[],
    broadcast: [] as boolean[],
    critical: [] as boolean[],
    createdAt: [] as string[],
    url: [] as (string | null)[],
    icon: [] as (string | null)[],
    actor: [] as (string | null)[],
    actions: [] as (string | null)[],
  };
  readonly r = { user: [] as string[], id: [] as number[] };
  readonly k = { publisher: [] as string[], key: [] as string[], hash: [] as string[], id: [] as number[], createdAt: [] as string[] };

  add(id: number, row: WriteRow, idempotency: IdempotencyKey | undefined): void {
    const { n, r, k } = this;
    n.id.push(id);
    n.title.push(row.title);
    n.body.push(row.body);
    n.data.push(row.dataJson);
    n.type.push(row.type);
    n.topic.push(row.topic);
    n.broadcast.push(row.broadcast);
    n.critical.push(row.critical);
    n.createdAt.push(row.createdAt);
    n.url.push(row.url);
    n.icon.push(row.icon);
    n.actor.push(row.actorJson);
    n.actions.push(row.actionsJson);
    for (const u of row.users ?? []) {
      r.user.push(u);
      r.id.push(id);
    }
    if (idempotency) {
      k.publisher.push(idempotency.publisher);
      k.key.push(idempotency.key);
      k.hash.push(idempotency.requestHash);
      k.id.push(id);
      k.createdAt.push(row.createdAt);
    }
  }
}

const keyOf = (k: { publisher: string; key: string }) => JSON.stringify([k.publisher, k.key]);

/**
 * The scale-out store: several Herald instances share one PostgreSQL database. Same semantics as
 * SqliteStore; ids come from a locked counter row (see schema.postgres.sql), so they are dense and
 * become visible in increasing order across instances.
 */
export class PostgresStore implements Store {
  /**
   * Publishes queued while a transaction runs share the next one. One transaction at a time per
   * instance is no loss: transactions serialise on the id lock anyway.
   */
  private readonly inserts = new GroupCommit<Publish, InsertResult>((batch) => this.commitBatch(batch), maxBatch);

  private readonly pruneSteps: PruneSteps = {
    oldBatch: async (cutoff) => (await this.pool.query<{ n: number }>(sql.pruneOld, [everyone, cutoff])).rows[0]!.n,
    deadWebhooksBatch: async (cutoff) => (await this.pool.query<{ n: number }>(sql.pruneDeadWebhooks, [cutoff.getTime()])).rows[0]!.n,
    usersOverCap: async (perUser) =>
      (await this.pool.query<{ user_id: string }>(sql.usersOverCap, [perUser])).rows.map((r) => r.user_id),
    capEdge: async (user, perUser) => (await this.pool.query<{ id: number }>(sql.capEdge, [user, perUser])).rows[0]?.id,
    userBatch: async (user, upTo) =>
      (await this.pool.query<{ unlinked: number; deleted: number }>(sql.pruneUser, [user, upTo])).rows[0]!,
  };

  private constructor(private readonly pool: pg.Pool) {}

  /** Connects and applies schema.postgres.sql. */
  static async open(url: string): Promise<PostgresStore> {
    const pool = new pg.Pool({
      connectionString: url,
      types,
      max: 10,
      application_name: 'herald',
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
      // A publishing transaction holds the id lock that every instance's publishes wait for; if its
      // instance stalls or loses the network mid-transaction, PostgreSQL ends it instead of waiting.
      idle_in_transaction_session_timeout: 10_000,
    });
    // An idle pooled connection that drops emits here; the pool discards it and the next query
    // opens a new one. Without a listener the process would exit on it.
    pool.on('error', () => {});
    try {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock($1)', [schemaLockKey]);
        await client.query(readFileSync(projectFile('schema.postgres.sql'), 'utf8'));
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    } catch (err) {
      await pool.end();
      throw new Error(`cannot use PostgreSQL at ${printable(url)}: ${(err as Error).message}`, { cause: err });
    }
    return new PostgresStore(pool);
  }

  insert(n: NewNotification, idempotency?: IdempotencyKey): Promise<InsertResult> {
    return this.inserts.add({ n, idempotency });
  }

  private commitBatch(batch: Publish[]): Promise<InsertResult[]> {
    return this.transaction(async (client) => {
      // Taken first and held to COMMIT: every other publisher, on any instance, waits here, so ids
      // commit in order, and the idempotency keys read next include every committed one.
      const { rows } = await client.query<{ last_id: number }>(sql.lockCounter);
      let last = rows[0]!.last_id;

      const keyed = batch.flatMap((p) => (p.idempotency ? [p.idempotency] : []));
      const known = new Map<string, { hash: string; id: number }>();
      if (keyed.length > 0) {
        const found = await client.query<{ publisher: string; key: string; request_hash: string; notification_id: number }>(
          sql.findKeys,
          [keyed.map((k) => k.publisher), keyed.map((k) => k.key)],
        );
        for (const r of found.rows) known.set(keyOf(r), { hash: r.request_hash, id: r.notification_id });
      }

      const b = new BatchRows();
      const outcome: ({ created: StoredNotification } | { replayed: number } | { conflict: true })[] = [];
      for (const { n, idempotency } of batch) {
        // A key used earlier in this same batch counts too: `known` gains each new key below.
        const prior = idempotency && known.get(keyOf(idempotency));
        if (idempotency && prior) {
          outcome.push(prior.hash === idempotency.requestHash ? { replayed: prior.id } : { conflict: true });
          continue;
        }
        const id = ++last;
        const row = newRow(n);
        b.add(id, row.write, idempotency);
        if (idempotency) known.set(keyOf(idempotency), { hash: idempotency.requestHash, id });
        outcome.push({ created: created(row, id) });
      }

      const { n: nr, r: rr, k: kr } = b;
      if (nr.id.length > 0) {
        await client.query(sql.insertBatch, [
          nr.id, nr.title, nr.body, nr.data, nr.type, nr.topic, nr.broadcast, nr.createdAt,
          rr.user, rr.id,
          kr.publisher, kr.key, kr.hash, kr.id, kr.createdAt,
          last,
          nr.url, nr.icon, nr.actor, nr.actions,
          nr.critical,
        ]);
      }
      // Replays answer with the stored row, as SQLite does (read inside the transaction, which sees its own rows).
      const replayIds = outcome.flatMap((o) => ('replayed' in o ? [o.replayed] : []));
      const replayed = new Map<number, StoredNotification>();
      if (replayIds.length > 0) {
        const found = await client.query<Row>(sql.byIds, [replayIds]);
        for (const row of found.rows) replayed.set(row.id, fromRow(row));
      }
      return outcome.map((o): InsertResult => {
        if ('created' in o) return { status: 'created', notification: o.created };
        if ('conflict' in o) return { status: 'conflict' };
        return { status: 'replayed', notification: replayed.get(o.replayed)! };
      });
    });
  }

  private async rows(text: string, values: unknown[]): Promise<Row[]> {
    return (await this.pool.query<Row>(text, values)).rows;
  }

  async since(audience: Audience, afterId: number, limit: number): Promise<StoredNotification[]> {
    return (await this.rows(sql.since, [audience.user, audience.topics, afterId, limit])).map(fromRow);
  }

  async catchUp(audience: Audience, afterId: number, limit: number): Promise<CatchUp> {
    const { rows } = await this.pool.query<Row & { head: number; pruned_up_to: number }>(sql.catchUp, [audience.user, audience.topics, afterId, limit]);
    const first = rows[0]!;
    return { head: first.head, prunedUpTo: first.pruned_up_to, missed: first.id === null ? [] : rows.map(fromRow) };
  }

  async range(afterId: number, upTo: number): Promise<StoredNotification[]> {
    return (await this.rows(sql.range, [afterId, upTo])).map(fromRow);
  }

  async replayStates(users: readonly string[], afterId: number): Promise<Map<string, ReplayState>> {
    // bigint[] elements arrive as text: the int8 parser applies to scalars only.
    const { rows } = await this.pool.query<{ user_id: string; up_to: number; deleted: string[]; muted_types: string[]; muted_topics: string[] }>(
      sql.replayStates,
      [users, afterId],
    );
    return new Map(
      rows.map((r) => [
        r.user_id,
        { prunedUpTo: r.up_to, deleted: r.deleted.map(Number), mutes: { types: r.muted_types, topics: r.muted_topics } },
      ]),
    );
  }

  async list(audience: Audience, q: ListQuery): Promise<InboxItem[]> {
    const rows = (await this.rows(sql.list[listIndex({ unread: q.unreadOnly, includeMuted: q.includeMuted ?? false, topicsOnly: q.topicsOnly ?? false })]!, [
      audience.user,
      audience.topics,
      q.before ?? Number.MAX_SAFE_INTEGER,
      q.limit,
    ])) as (Row & { read: boolean; muted: boolean; delivered_at: Date | null; read_at: Date | null })[];
    return rows.map((r) => ({
      ...publicView(fromRow(r)),
      read: r.read,
      muted: r.muted,
      deliveredAt: r.delivered_at?.toISOString() ?? null,
      readAt: r.read_at?.toISOString() ?? null,
    }));
  }

  async unreadCount(audience: Audience, q: CountQuery = {}): Promise<number> {
    const i = Number(q.topicsOnly ?? false);
    const params = [audience.user, audience.topics, q.upTo ?? Number.MAX_SAFE_INTEGER];
    const countBy = async (text: string) => (await this.pool.query<{ c: number | null }>(text, params)).rows[0]!.c;
    return (await countBy(sql.unreadCount[i]!)) ?? (await countBy(sql.unreadCountMuted[i]!))!;
  }

  private async count(text: string, values: unknown[]): Promise<number> {
    return (await this.pool.query<{ n: number }>(text, values)).rows[0]!.n;
  }

  async markRead(user: string, id: number, action: UserAction = unreported()): Promise<boolean> {
    return (await this.count(sql.markRead, [user, id, action.at, ...jobColumns(action.outbox)])) > 0;
  }

  /** Runs `work` in a transaction on one pooled connection: committed if it resolves, rolled back if it throws. */
  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw err;
    } finally {
      // A connection that could not even roll back is discarded rather than returned to the pool.
      client.release(broken);
    }
  }

  markAllRead(user: string, action = unreportedAll()): Promise<number> {
    // The jobs are made from the watermark, known only once it is set: a transaction around both.
    return this.transaction(async (client) => {
      const upTo = (await client.query<{ last_id: number }>(sql.markAllRead, [user, action.at])).rows[0]!.last_id;
      const jobs = action.outbox(upTo);
      if (jobs.length > 0) await client.query(insertJobs(1, 'true'), jobColumns(jobs));
      return upTo;
    });
  }

  async remove(user: string, id: number, action: UserAction = unreported()): Promise<boolean> {
    return (await this.count(sql.remove, [user, id, ...jobColumns(action.outbox)])) > 0;
  }

  async recordDelivered(receipts: readonly DeliveredReceipt[], outbox: (r: DeliveredReceipt) => WebhookJob[]): Promise<void> {
    const jobs = receipts.flatMap((r) => outbox(r).map((job) => ({ job, r })));
    await this.pool.query(sql.recordDelivered, [
      receipts.map((r) => r.user),
      receipts.map((r) => r.id),
      receipts.map((r) => r.at),
      ...jobColumns(jobs.map((j) => j.job)),
      jobs.map((j) => j.r.user),
      jobs.map((j) => j.r.id),
    ]);
  }

  async claimWebhooks(limit: number, leaseMs: number): Promise<OutboxEntry[]> {
    const now = Date.now();
    return (await this.pool.query<OutboxRow>(sql.claimWebhooks, [now, now + leaseMs, limit])).rows.map(outboxEntry);
  }

  async webhookDelivered(id: string): Promise<void> {
    await this.pool.query(sql.webhookDone, [id]);
  }

  async webhookFailed(id: string, error: string, retryAt: number | null): Promise<void> {
    if (retryAt === null) await this.pool.query(sql.webhookDead, [error, id]);
    else await this.pool.query(sql.webhookRetryAt, [retryAt, error, id]);
  }

  async listWebhooks(status: WebhookStatus, limit: number): Promise<OutboxEntry[]> {
    return (await this.pool.query<OutboxRow>(sql.listWebhooks, [status, limit])).rows.map(outboxEntry);
  }

  async retryWebhook(id: string): Promise<boolean> {
    return ((await this.pool.query(sql.retryWebhook, [Date.now(), id])).rowCount ?? 0) > 0;
  }

  async webhookCounts(): Promise<Record<WebhookStatus, number>> {
    const counts = { pending: 0, dead: 0 };
    for (const r of (await this.pool.query<{ status: WebhookStatus; c: number }>(sql.webhookCounts)).rows) counts[r.status] = r.c;
    return counts;
  }

  async lastId(): Promise<number> {
    const { rows } = await this.pool.query<{ last_id: number }>(sql.lastId);
    return rows[0]!.last_id;
  }

  prune(opts: PruneOptions): Promise<number> {
    return prune(this.pruneSteps, opts);
  }

  async prunedUpTo(user: string): Promise<number> {
    return (await this.pool.query<{ up_to: number }>(sql.horizon, [user])).rows[0]!.up_to;
  }

  async preferences(user: string): Promise<Preferences | null> {
    return (await this.pool.query<{ doc: Preferences }>(sql.preferences, [user])).rows[0]?.doc ?? null;
  }

  async setPreferences(user: string, p: Preferences, mutes: Mutes): Promise<void> {
    await this.pool.query(sql.setPreferences, [user, JSON.stringify(p), mutes.types, mutes.topics]);
  }

  async addPushSubscription(user: string, sub: PushSubscriptionRecord, maxPerUser: number): Promise<void> {
    // The new row is not visible to the trim in the same statement: it keeps the newest maxPerUser - 1 others.
    await this.pool.query(sql.saveSubscription, [sub.endpoint, user, sub.p256dh, sub.auth, Date.now(), maxPerUser]);
  }

  async removePushSubscription(endpoint: string, user?: string): Promise<boolean> {
    return ((await this.pool.query(sql.removeSubscription, [endpoint, user ?? null])).rowCount ?? 0) > 0;
  }

  async queuePushJobs(now: number, max: number): Promise<number> {
    // A read first: every instance wakes on every direct notification, and most find another one moved the cursor.
    if (!(await this.pool.query<{ behind: boolean }>(sql.pushBehind)).rows[0]!.behind) return 0;
    return this.transaction(async (client) => {
      // Held to COMMIT: instances queueing at once take turns, each starting where the last one stopped.
      const after = (await client.query<{ last_id: number }>(sql.lockPushCursor)).rows[0]!.last_id;
      const { rows } = await client.query<{ up_to: number }>(sql.queuePushes, [after, max, now]);
      return rows[0]!.up_to - after;
    });
  }

  async claimPushJobs(now: number, limit: number, leaseMs: number): Promise<PushJob[]> {
    return (await this.pool.query<JobRow>(sql.claimJobs, [now, limit, now + leaseMs])).rows.map(jobFromRow);
  }

  async finishPushJobs(ids: readonly number[]): Promise<void> {
    await this.pool.query(sql.finishJobs, [ids]);
  }

  async deferPushJob(id: number, dueAt: number, kind: 'retry' | 'hold'): Promise<void> {
    await this.pool.query(sql.deferJob, [id, dueAt, kind === 'retry' ? 1 : 0, kind === 'hold']);
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    // Commit whatever is queued before closing, so a graceful stop loses no acknowledged publish.
    await this.inserts.drain();
    if (!this.pool.ended) await this.pool.end();
  }
}
