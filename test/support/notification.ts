import type { StoredNotification, Target } from '../../src/types.js';

/** A committed notification as the store returns it and the bus carries it, for tests below the HTTP layer. */
export function storedNotification(id: number, target: Target = { broadcast: true }): StoredNotification {
  return {
    id,
    title: `n${id}`,
    body: null,
    data: null,
    type: null,
    topic: 'topic' in target ? target.topic : null,
    broadcast: 'broadcast' in target,
    critical: false,
    createdAt: new Date().toISOString(),
    url: null,
    icon: null,
    actor: null,
    actions: null,
    users: 'users' in target ? target.users : null,
  };
}
