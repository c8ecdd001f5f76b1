-- Herald's PostgreSQL schema (HERALD_STORE=postgres://...): the same tables as schema.sql, applied on
-- every start. Every statement is idempotent, so applying it to an existing database changes nothing;
-- instances starting together apply it one at a time under an advisory lock (src/store/postgres.ts).

-- The last id handed out. Every publishing transaction locks this one row to take its ids and keeps
-- the lock until it commits, so transactions commit in id order: once a reader sees id N, no smaller
-- id can appear later (a plain sequence lets a later id commit first). A rolled-back transaction
-- rolls its increment back too, so ids are dense: instances repair bus gaps by reading id ranges.
CREATE TABLE IF NOT EXISTS id_counter (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  last_id    bigint  NOT NULL
);
INSERT INTO id_counter (singleton, last_id) VALUES (true, 0) ON CONFLICT DO NOTHING;

-- One row per published notification; the id comes from id_counter, not from a sequence.
CREATE TABLE IF NOT EXISTS notifications (
  id          bigint      PRIMARY KEY,
  title       text        NOT NULL,
  body        text,
  data        json,                                 -- json, not jsonb: kept exactly as sent
  type        text,
  topic       text,                                 -- set for topic notifications
  broadcast   boolean     NOT NULL DEFAULT false,   -- true for notifications to everyone
  critical    boolean     NOT NULL DEFAULT false,   -- true: no preference mutes it
  created_at  timestamptz NOT NULL
);
-- Added after the first release; IF NOT EXISTS adds them to an older database and skips them after.
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS url text;         -- where it leads: http(s) URL or /path
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS icon text;        -- http(s) URL of an image
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS actor json;       -- {"name", "avatar"?}
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS actions json;     -- [{"label", "url"}], at most 3
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS critical boolean NOT NULL DEFAULT false;
-- Catch-up and history walk each audience by id: these keep each walk an index range scan.
CREATE INDEX IF NOT EXISTS notifications_topic_id ON notifications (topic, id) WHERE topic IS NOT NULL;
CREATE INDEX IF NOT EXISTS notifications_broadcast_id ON notifications (id) WHERE broadcast;
CREATE INDEX IF NOT EXISTS notifications_created_at ON notifications (created_at);

-- Direct recipients of user-targeted notifications (`user` or `users`). The primary key serves a
-- user's walk by id; the second index lists one notification's recipients.
CREATE TABLE IF NOT EXISTS recipients (
  user_id          text   NOT NULL,
  notification_id  bigint NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
  PRIMARY KEY (user_id, notification_id)
);
CREATE INDEX IF NOT EXISTS recipients_notification ON recipients (notification_id);

-- Per-user state of one notification: read and/or deleted (hidden for that user only).
CREATE TABLE IF NOT EXISTS user_state (
  user_id          text    NOT NULL,
  notification_id  bigint  NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
  read             boolean NOT NULL DEFAULT false,
  deleted          boolean NOT NULL DEFAULT false,
  PRIMARY KEY (user_id, notification_id)
);
CREATE INDEX IF NOT EXISTS user_state_notification ON user_state (notification_id);

-- "Mark all read" stores one watermark per user instead of a row per broadcast and topic notification.
CREATE TABLE IF NOT EXISTS read_marks (
  user_id     text   PRIMARY KEY,
  read_up_to  bigint NOT NULL
);

-- Idempotency-Key of a publish, per publisher, with a hash of the request it answered. Keys are
-- checked while holding the id_counter lock, so two instances racing with one key see each other.
CREATE TABLE IF NOT EXISTS idempotency_keys (
  publisher        text        NOT NULL,
  key              text        NOT NULL,
  request_hash     text        NOT NULL,
  notification_id  bigint      NOT NULL,
  created_at       timestamptz NOT NULL,
  PRIMARY KEY (publisher, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_notification ON idempotency_keys (notification_id);

-- Retention horizons: the highest notification id ever removed from someone's view by pruning.
-- user_id '' (never a valid user id) holds the age horizon, which applies to everyone; a user's own
-- row, the horizon of their per-user cap. A catch-up from below its horizon cannot be complete.
CREATE TABLE IF NOT EXISTS pruned_marks (
  user_id  text   PRIMARY KEY,
  up_to    bigint NOT NULL
);

-- Receipts of one user for one notification: when one of their streams first got it (direct
-- notifications only: see the README's "Webhooks and receipts") and when they read it by itself.
CREATE TABLE IF NOT EXISTS receipts (
  user_id          text        NOT NULL,
  notification_id  bigint      NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
  delivered_at     timestamptz,
  read_at          timestamptz,
  PRIMARY KEY (user_id, notification_id)
);
CREATE INDEX IF NOT EXISTS receipts_notification ON receipts (notification_id);

-- Every "mark all read" of a user, with its time: the read time of a notification it covered is that
-- of the first one whose watermark reached it (read_marks keeps only the latest watermark).
CREATE TABLE IF NOT EXISTS read_all_log (
  user_id  text        NOT NULL,
  up_to    bigint      NOT NULL,
  read_at  timestamptz NOT NULL,
  PRIMARY KEY (user_id, up_to)
);
-- Retention drops the entries below the age horizon: they cover no notification any more.
CREATE INDEX IF NOT EXISTS read_all_log_up_to ON read_all_log (up_to);

-- Outgoing webhooks not yet delivered: written in the transaction of the change they report, sent
-- at least once by the dispatcher. A delivered job's row is deleted; one out of attempts stays, dead.
-- Instances claim due jobs with FOR UPDATE SKIP LOCKED, so each attempt is made by one of them.
CREATE TABLE IF NOT EXISTS webhook_outbox (
  id               text    PRIMARY KEY,               -- the webhook-id of every attempt
  endpoint         text    NOT NULL,
  event            text    NOT NULL,
  payload          text    NOT NULL,                  -- the exact body signed and sent
  status           text    NOT NULL DEFAULT 'pending', -- pending | dead
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  bigint  NOT NULL,                  -- ms since the epoch; a claim moves it to its lease's end
  last_error       text,
  created_at       bigint  NOT NULL                   -- ms since the epoch
);
CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_outbox_status ON webhook_outbox (status, created_at);
-- A user's preferences (GET/PUT /preferences), the document as stored.
CREATE TABLE IF NOT EXISTS preferences (
  user_id  text PRIMARY KEY,
  doc      json NOT NULL
);

-- What each user's preferences mute in-app, one row per switched-off type or topic (kind 'type' or
-- 'topic'), written with the document: audience queries test a notification against these rows, and a
-- user with none pays one empty index probe.
CREATE TABLE IF NOT EXISTS inapp_mutes (
  user_id  text NOT NULL,
  kind     text NOT NULL,
  name     text NOT NULL,
  PRIMARY KEY (user_id, kind, name)
);

-- Web Push subscriptions, one per browser (endpoint): a user may have several devices. An endpoint
-- registered again, by whoever, belongs to the last user who registered it.
CREATE TABLE IF NOT EXISTS push_subscriptions (
  endpoint    text   PRIMARY KEY,
  user_id     text   NOT NULL,
  p256dh      text   NOT NULL,             -- the browser's ECDH public key, base64url
  auth        text   NOT NULL,             -- its auth secret, base64url
  created_at  bigint NOT NULL              -- ms since the epoch
);
CREATE INDEX IF NOT EXISTS push_subscriptions_user ON push_subscriptions (user_id, created_at);

-- Pushes waiting to be sent, one per notification and subscription, written by the push worker from
-- push_cursor, not by the publish. Instances claim due jobs with FOR UPDATE SKIP LOCKED and lease
-- them (locked_until) while they send; a job whose instance died is taken again after its lease.
CREATE TABLE IF NOT EXISTS push_jobs (
  id               bigserial PRIMARY KEY,
  notification_id  bigint  NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
  user_id          text    NOT NULL,
  endpoint         text    NOT NULL REFERENCES push_subscriptions (endpoint) ON DELETE CASCADE,
  due_at           bigint  NOT NULL,            -- ms since the epoch
  attempts         integer NOT NULL DEFAULT 0,
  held             boolean NOT NULL DEFAULT false,  -- true: held by quiet hours, sent in a summary
  locked_until     bigint  NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS push_jobs_due ON push_jobs (due_at);
CREATE INDEX IF NOT EXISTS push_jobs_notification ON push_jobs (notification_id);
CREATE INDEX IF NOT EXISTS push_jobs_endpoint ON push_jobs (endpoint);

-- The highest notification id whose push jobs exist: an instance's push worker locks this row, writes
-- the jobs of the ids above it and moves it, in one transaction, so each job is written once. A new
-- database starts at 0; one from before this table starts at its newest id (history is not pushed).
CREATE TABLE IF NOT EXISTS push_cursor (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  last_id    bigint  NOT NULL
);
INSERT INTO push_cursor (singleton, last_id) SELECT true, last_id FROM id_counter ON CONFLICT DO NOTHING;
