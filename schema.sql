-- Herald's SQLite schema: the single source of truth, applied on every start.
-- Every statement is idempotent (IF NOT EXISTS), so applying it to an existing file changes nothing.

-- One row per published notification. AUTOINCREMENT (not plain rowid) because ids are the SSE event
-- ids clients resume from: an id must never be handed out twice, even after the newest row is deleted.
CREATE TABLE IF NOT EXISTS notifications (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  title       TEXT    NOT NULL,
  body        TEXT,
  data        TEXT,                        -- JSON object, as sent
  type        TEXT,
  topic       TEXT,                        -- set for topic notifications
  broadcast   INTEGER NOT NULL DEFAULT 0,  -- 1 for notifications to everyone
  created_at  TEXT    NOT NULL,            -- ISO 8601, UTC
  -- Added after the first release: src/store/sqlite-writer.ts adds them to an older file on start.
  url         TEXT,                        -- where the notification leads: http(s) URL or /path
  icon        TEXT,                        -- http(s) URL of an image
  actor       TEXT,                        -- JSON {"name", "avatar"?}
  actions     TEXT,                        -- JSON [{"label", "url"}], at most 3
  critical    INTEGER NOT NULL DEFAULT 0   -- 1: no preference mutes it
);
-- Catch-up and history walk each audience by id: these keep each walk an index range scan.
CREATE INDEX IF NOT EXISTS notifications_topic_id ON notifications (topic, id) WHERE topic IS NOT NULL;
CREATE INDEX IF NOT EXISTS notifications_broadcast_id ON notifications (id) WHERE broadcast = 1;
CREATE INDEX IF NOT EXISTS notifications_created_at ON notifications (created_at);

-- Direct recipients of user-targeted notifications (`user` or `users`).
CREATE TABLE IF NOT EXISTS recipients (
  user_id          TEXT    NOT NULL,
  notification_id  INTEGER NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
  PRIMARY KEY (user_id, notification_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS recipients_notification ON recipients (notification_id);

-- Per-user state of one notification: read and/or deleted (hidden for that user only).
CREATE TABLE IF NOT EXISTS user_state (
  user_id          TEXT    NOT NULL,
  notification_id  INTEGER NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
  read             INTEGER NOT NULL DEFAULT 0,
  deleted          INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, notification_id)
) WITHOUT ROWID;
-- Deleting a notification (retention) cascades here: without this index each delete scans the table.
CREATE INDEX IF NOT EXISTS user_state_notification ON user_state (notification_id);

-- "Mark all read" stores one watermark per user instead of a row per broadcast and topic notification.
CREATE TABLE IF NOT EXISTS read_marks (
  user_id     TEXT    PRIMARY KEY,
  read_up_to  INTEGER NOT NULL
) WITHOUT ROWID;

-- Idempotency-Key of a publish, per publisher, with a hash of the request it answered.
CREATE TABLE IF NOT EXISTS idempotency_keys (
  publisher        TEXT    NOT NULL,
  key              TEXT    NOT NULL,
  request_hash     TEXT    NOT NULL,
  notification_id  INTEGER NOT NULL,
  created_at       TEXT    NOT NULL,
  PRIMARY KEY (publisher, key)
) WITHOUT ROWID;
-- Retention drops the keys of the notifications it deletes, so a key never points at a missing row.
CREATE INDEX IF NOT EXISTS idempotency_keys_notification ON idempotency_keys (notification_id);

-- Retention horizons: the highest notification id ever removed from someone's view by pruning.
-- user_id '' (never a valid user id) holds the age horizon, which applies to everyone; a user's own
-- row, the horizon of their per-user cap. A catch-up from below its horizon cannot be complete.
CREATE TABLE IF NOT EXISTS pruned_marks (
  user_id  TEXT    PRIMARY KEY,
  up_to    INTEGER NOT NULL
) WITHOUT ROWID;

-- Receipts of one user for one notification: when one of their streams first got it (direct
-- notifications only: see the README's "Webhooks and receipts") and when they read it by itself.
CREATE TABLE IF NOT EXISTS receipts (
  user_id          TEXT    NOT NULL,
  notification_id  INTEGER NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
  delivered_at     TEXT,                   -- ISO 8601, UTC
  read_at          TEXT,
  PRIMARY KEY (user_id, notification_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS receipts_notification ON receipts (notification_id);

-- Every "mark all read" of a user, with its time: the read time of a notification it covered is that
-- of the first one whose watermark reached it (read_marks keeps only the latest watermark).
CREATE TABLE IF NOT EXISTS read_all_log (
  user_id  TEXT    NOT NULL,
  up_to    INTEGER NOT NULL,
  read_at  TEXT    NOT NULL,
  PRIMARY KEY (user_id, up_to)
) WITHOUT ROWID;
-- Retention drops the entries below the age horizon: they cover no notification any more.
CREATE INDEX IF NOT EXISTS read_all_log_up_to ON read_all_log (up_to);

-- Outgoing webhooks not yet delivered: written in the transaction of the change they report, sent
-- at least once by the dispatcher. A delivered job's row is deleted; one out of attempts stays, dead.
CREATE TABLE IF NOT EXISTS webhook_outbox (
  id               TEXT    PRIMARY KEY,               -- the webhook-id of every attempt
  endpoint         TEXT    NOT NULL,
  event            TEXT    NOT NULL,
  payload          TEXT    NOT NULL,                  -- the exact body signed and sent
  status           TEXT    NOT NULL DEFAULT 'pending', -- pending | dead
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  INTEGER NOT NULL,                  -- ms since the epoch; a claim moves it to its lease's end
  last_error       TEXT,
  created_at       INTEGER NOT NULL                   -- ms since the epoch
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_outbox_status ON webhook_outbox (status, created_at);
-- A user's preferences (GET/PUT /preferences), the document as stored.
CREATE TABLE IF NOT EXISTS preferences (
  user_id  TEXT PRIMARY KEY,
  doc      TEXT NOT NULL                 -- JSON
) WITHOUT ROWID;

-- What each user's preferences mute in-app, one row per switched-off type or topic (kind 'type' or
-- 'topic'), written with the document: audience queries test a notification against these rows, and a
-- user with none pays one empty index probe.
CREATE TABLE IF NOT EXISTS inapp_mutes (
  user_id  TEXT NOT NULL,
  kind     TEXT NOT NULL,
  name     TEXT NOT NULL,
  PRIMARY KEY (user_id, kind, name)
) WITHOUT ROWID;

-- Web Push subscriptions, one per browser (endpoint): a user may have several devices. An endpoint
-- registered again, by whoever, belongs to the last user who registered it.
CREATE TABLE IF NOT EXISTS push_subscriptions (
  endpoint    TEXT    PRIMARY KEY,
  user_id     TEXT    NOT NULL,
  p256dh      TEXT    NOT NULL,            -- the browser's ECDH public key, base64url
  auth        TEXT    NOT NULL,            -- its auth secret, base64url
  created_at  INTEGER NOT NULL             -- ms since the epoch
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS push_subscriptions_user ON push_subscriptions (user_id, created_at);

-- Pushes waiting to be sent, one per notification and subscription, written by the push worker from
-- push_cursor, not by the publish. A sender leases a job (locked_until) while it sends; a job whose
-- sender died is taken again once its lease runs out.
CREATE TABLE IF NOT EXISTS push_jobs (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  notification_id  INTEGER NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
  user_id          TEXT    NOT NULL,
  endpoint         TEXT    NOT NULL REFERENCES push_subscriptions (endpoint) ON DELETE CASCADE,
  due_at           INTEGER NOT NULL,            -- ms since the epoch
  attempts         INTEGER NOT NULL DEFAULT 0,
  held             INTEGER NOT NULL DEFAULT 0,  -- 1: held by quiet hours, sent in a summary
  locked_until     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS push_jobs_due ON push_jobs (due_at);
CREATE INDEX IF NOT EXISTS push_jobs_notification ON push_jobs (notification_id);
CREATE INDEX IF NOT EXISTS push_jobs_endpoint ON push_jobs (endpoint);

-- The highest notification id whose push jobs exist: the push worker writes the jobs of the ids above
-- it and moves it, in one transaction, so a committed notification is never skipped nor queued twice.
-- A new file starts at 0; a file from before this table starts at its newest id (history is not pushed).
CREATE TABLE IF NOT EXISTS push_cursor (
  id       INTEGER PRIMARY KEY CHECK (id = 1),
  last_id  INTEGER NOT NULL
);
INSERT OR IGNORE INTO push_cursor (id, last_id)
  SELECT 1, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'notifications'), 0);
