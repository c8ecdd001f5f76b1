import { publicView, type Ephemeral, type Notification, type StoredNotification, type UserEvent } from '../types.js';

const encoded = new WeakMap<StoredNotification, OutEvent>();

/** The user events a stream is told about (a preferences change is for the instances, not the client). */
export type StreamUserEvent = Exclude<UserEvent, { kind: 'preferences' }>;

/**
 * One event on its way to clients, serialised lazily and at most once per format however many
 * streams receive it (its JSON here, its frames by each transport): fan-out to 10,000 streams costs one JSON.stringify, not 10,000.
 */
export class OutEvent {
  private jsonText: string | undefined;
  /**
   * This event's frame in each wire format, encoded by the transport that owns the format (sse.ts,
   * ws.ts) the first time a stream needs it; every other stream writes the same bytes.
   */
  readonly frames: { sse?: string; sseBytes?: Buffer; ws?: Buffer; pusher?: Buffer } = {};

  constructor(
    /** The notification id for `notification` and `reload` events; none for per-user state and ephemeral events. */
    readonly id: number | undefined,
    readonly event: 'notification' | 'read' | 'deleted' | 'reload' | 'unread' | 'ephemeral',
    /** What is serialised: a `Notification` for `notification`, an `Ephemeral` for `ephemeral`. */
    readonly payload: unknown,
    /** A Pusher publish's `socket_id`: the socket this event is not written to live. */
    readonly exceptSocket?: string,
  ) {}

  /** The notification a `notification` event carries: the hub's mutes are checked against it. */
  get notification(): Notification | undefined {
    return this.event === 'notification' ? (this.payload as Notification) : undefined;
  }

  get json(): string {
    return (this.jsonText ??= JSON.stringify(this.payload));
  }

  /**
   * The same event for the same notification object: the hub's live fan-out and every replay from the
   * recent-events ring share one serialisation and one frame per format, so a storm of resumes encodes
   * each notification once, not once per client. A Pusher publish that excludes a socket gets its own
   * event (its exclusion is for live delivery only; a replay of it is shared).
   */
  static notification(n: StoredNotification, exceptSocket?: string): OutEvent {
    if (exceptSocket !== undefined) return new OutEvent(n.id, 'notification', publicView(n), exceptSocket);
    let ev = encoded.get(n);
    if (!ev) encoded.set(n, (ev = new OutEvent(n.id, 'notification', publicView(n))));
    return ev;
  }

  static ephemeral(e: Ephemeral): OutEvent {
    return new OutEvent(undefined, 'ephemeral', e);
  }

  static user(e: StreamUserEvent): OutEvent {
    switch (e.kind) {
      case 'read':
        return new OutEvent(undefined, 'read', { ids: e.ids });
      case 'read-all':
        return new OutEvent(undefined, 'read', { all: true, upTo: e.upTo });
      case 'deleted':
        return new OutEvent(undefined, 'deleted', { id: e.id });
    }
  }

  /** The user's unread count as this stream sees it (its own topics): one stream's, so never shared. */
  static unread(count: number): OutEvent {
    return new OutEvent(undefined, 'unread', { count });
  }

  /** Tells a client it is too far behind (or ahead) to catch up event by event: reload history, resume at `lastId`. */
  static reload(lastId: number, reason: string): OutEvent {
    return new OutEvent(lastId, 'reload', { reason, lastId });
  }
}
