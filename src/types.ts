// The shapes shared by the store, the bus, the hub and the routes.

/** Who a notification is for: exactly one of these. */
export type Target = { users: string[] } | { topic: string } | { broadcast: true };

/** What a subscriber sees of a notification: never the list of other recipients. */
export interface Notification {
  id: number;
  title: string;
  body: string | null;
  data: Record<string, unknown> | null;
  type: string | null;
  topic: string | null;
  broadcast: boolean;
  /** Published as critical: no preference mutes it. */
  critical: boolean;
  createdAt: string;
}

/** A notification with its routing: what the store returns to publishers and puts on the bus. */
export interface StoredNotification extends Notification {
  users: string[] | null;
}

/** A notification in one user's history. */
export interface InboxItem extends Notification {
  read: boolean;
  /** Muted by the user's preferences: listed only when history is asked for with `includeMuted`. */
  muted: boolean;
}

export interface NewNotification {
  title: string;
  body?: string;
  data?: Record<string, unknown>;
  type?: string;
  critical?: boolean;
  target: Target;
}

/** Who may see what: the user and the topics their stream or query subscribed to. */
export interface Audience {
  user: string;
  topics: readonly string[];
}

/** Per-user state changes, pushed to that user's other open streams so tabs stay in step. */
export type UserEvent =
  | { kind: 'read'; user: string; ids: number[] }
  | { kind: 'read-all'; user: string; upTo: number }
  | { kind: 'deleted'; user: string; id: number }
  /** The user's preferences changed: every instance re-reads them (they are not sent to streams). */
  | { kind: 'preferences'; user: string };

/** Everything that travels on the bus between instances. */
export type BusMessage = { kind: 'notification'; notification: StoredNotification } | UserEvent;

export function publicView(n: StoredNotification): Notification {
  return {
    id: n.id,
    title: n.title,
    body: n.body,
    data: n.data,
    type: n.type,
    topic: n.topic,
    broadcast: n.broadcast,
    critical: n.critical,
    createdAt: n.createdAt,
  };
}

/** A channel's switches for one notification type or topic: absent means on. */
export interface ChannelSwitches {
  inapp?: boolean;
  push?: boolean;
}

/** A user's preferences (GET/PUT /preferences), as stored. */
export interface Preferences {
  push: 'offline' | 'always' | 'never';
  quietHours: { start: string; end: string; timeZone: string } | null;
  types: Record<string, ChannelSwitches>;
  topics: Record<string, ChannelSwitches>;
}

/** What a user's preferences mute in-app (streams, catch-up, history, unread count): derived in domain/preferences.ts. */
export interface Mutes {
  types: string[];
  topics: string[];
}
