import type { StoredNotification } from '../types.js';

/** A notification as the SQLite queries of both connections (reader and writer) select it. */
export interface Row {
  id: number;
  title: string;
  body: string | null;
  data: string | null;
  type: string | null;
  topic: string | null;
  broadcast: number;
  critical: number;
  created_at: string;
  url: string | null;
  icon: string | null;
  actor: string | null;
  actions: string | null;
  users: string | null;
}

const parsed = <T>(text: string | null): T | null => (text === null ? null : (JSON.parse(text) as T));

export function fromRow(r: Row): StoredNotification {
  return {
    id: r.id,
    title: r.title,
    body: r.body,
    data: parsed(r.data),
    type: r.type,
    topic: r.topic,
    broadcast: r.broadcast === 1,
    critical: r.critical === 1,
    createdAt: r.created_at,
    url: r.url,
    icon: r.icon,
    actor: parsed(r.actor),
    actions: parsed(r.actions),
    users: parsed(r.users),
  };
}

/** The select list of a `Row`, from `notifications n`. */
export const columns = `n.id, n.title, n.body, n.data, n.type, n.topic, n.broadcast, n.critical, n.created_at, n.url, n.icon, n.actor, n.actions,
  CASE WHEN n.topic IS NULL AND n.broadcast = 0
    THEN (SELECT json_group_array(user_id) FROM recipients r WHERE r.notification_id = n.id) END AS users`;

/** The newest id ever handed out: the AUTOINCREMENT counter, not max(id), since retention may have deleted the newest rows. */
export const lastIdSql = `SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'notifications'), 0) AS id`;
