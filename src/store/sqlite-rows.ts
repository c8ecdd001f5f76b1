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
  created_at: string;
  users: string | null;
}

export function fromRow(r: Row): StoredNotification {
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

/** The select list of a `Row`, from `notifications n`. */
export const columns = `n.id, n.title, n.body, n.data, n.type, n.topic, n.broadcast, n.created_at,
  CASE WHEN n.topic IS NULL AND n.broadcast = 0
    THEN (SELECT json_group_array(user_id) FROM recipients r WHERE r.notification_id = n.id) END AS users`;

/** The newest id ever handed out: the AUTOINCREMENT counter, not max(id), since retention may have deleted the newest rows. */
export const lastIdSql = `SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'notifications'), 0) AS id`;
