// The shapes shared by the store, the bus, the hub and the routes.

/** Who a notification is for: exactly one of these. */
export type Target = { users: string[] } | { topic: string } | { broadcast: true };

/** Who or what a notification comes from, as an inbox shows it. */
export interface Actor {
  name: string;
  avatar?: string;
}

/** A button an inbox shows on a notification: a label and where it leads. */
export interface Action {
  label: string;
  url: string;
}

/** The optional fields an inbox shows (contract A): the same on input, in the store and on output. */
export interface Presentation {
  url: string | null;
  icon: string | null;
  actor: Actor | null;
  actions: Action[] | null;
}

/** What a subscriber sees of a notification: never the list of other recipients. */
export interface Notification extends Presentation {
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
  /** When one of the user's streams first got it (direct notifications only); null when unknown. */
  deliveredAt: string | null;
  /** When the user read it (one read, or the mark-all-read that covered it); null when unread. */
  readAt: string | null;
  /** Muted by the user's preferences: listed only when history is asked for with `includeMuted`. */
  muted: boolean;
}

export interface NewNotification {
  title: string;
  body?: string;
  data?: Record<string, unknown>;
  type?: string;
  url?: string;
  icon?: string;
  actor?: Actor;
  actions?: Action[];
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

/**
 * An event for one topic's open streams that is never stored: a Pusher client event, or a presence
 * member joining or leaving. Delivered live only, like Pusher itself does.
 */
export interface Ephemeral {
  topic: string;
  /** The Pusher event name (`client-typing`, `pusher_internal:member_added`). */
  event: string;
  /** The Pusher `data`, as the string it travels as. */
  data: string;
  /** The presence member who sent a client event (Pusher's `user_id` field). */
  userId?: string;
  /** Not to this socket: the sender of a client event. */
  exceptSocket?: string;
  /** Not to this presence member's sockets: the member who joined or left. */
  exceptUser?: string;
}

/** One instance's presence members, by topic, then user id, with each user's `user_info`. */
export type PresenceMembers = Record<string, Record<string, unknown>>;

/**
 * Presence bookkeeping between instances: each instance announces its own members, and asks the
 * others for theirs when it starts; `gone` when it stops, so the others forget its members.
 */
export type PresenceMessage =
  | { kind: 'presence-member'; instance: string; topic: string; userId: string; userInfo: unknown; added: boolean }
  | { kind: 'presence-hello'; instance: string }
  | { kind: 'presence-state'; instance: string; members: PresenceMembers }
  | { kind: 'presence-gone'; instance: string };

/** Everything that travels on the bus between instances. */
export type BusMessage =
  /** `exceptSocket`: a Pusher publish's `socket_id`, the one socket not to receive it live. */
  | { kind: 'notification'; notification: StoredNotification; exceptSocket?: string }
  | UserEvent
  | ({ kind: 'ephemeral' } & Ephemeral)
  | PresenceMessage;

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
    url: n.url,
    icon: n.icon,
    actor: n.actor,
    actions: n.actions,
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
