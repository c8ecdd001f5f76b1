// The Pusher protocol (version 7) over WebSocket: one session per socket, one Subscription per channel
// it subscribes to (the same catch-up and live path as SSE and /ws), each writing through a PusherSink.
import { randomInt } from 'node:crypto';
import type { Writable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { WebSocket, type RawData } from 'ws';
import type { Bus } from '../bus/bus.js';
import type { StreamConfig, WsConfig } from '../config.js';
import {
  channelAuthValid,
  channelKind,
  isChannelName,
  pusherData,
  pusherEvent,
  topicOf,
  type PusherApp,
  type UserChannel,
} from '../domain/pusher.js';
import { userIdSchema } from '../schemas.js';
import type { Metrics } from '../metrics.js';
import type { Ephemeral, Notification } from '../types.js';
import type { Flusher } from './cork.js';
import type { Hub } from './hub.js';
import { RateBound, type ResumeLimiter } from './limits.js';
import type { OutEvent } from './out-event.js';
import type { PresenceRegistry } from './pusher-presence.js';
import type { Replay } from './recent.js';
import { Subscription, type Sink } from './subscription.js';
import { textFrame, WsSink } from './ws.js';

export interface PusherOptions extends StreamConfig, WsConfig {
  replay: Replay;
  flusher: Flusher;
  hub: Hub;
  bus: Bus;
  metrics: Metrics;
  resumes: ResumeLimiter;
  presence: PresenceRegistry;
  userChannel: UserChannel;
  activityTimeoutSeconds: number;
}

/** The Pusher protocol's close and error codes that Herald uses (pusher.com/docs/channels/library_auth_reference/pusher-websockets-protocol). */
export const pusherCode = {
  /** The app key names no app: do not reconnect. */
  appNotFound: 4001,
  /** The client speaks a protocol version Herald does not. */
  unsupportedProtocol: 4007,
  /** A subscription whose signature does not match. */
  unauthorized: 4009,
  /** Server going away (shutdown): reconnect at once. */
  reconnect: 4200,
  /** Client events sent faster than allowed. */
  clientEventRateLimited: 4301,
} as const;

/** Pusher's own bound on client events: 10 a second per socket. */
const clientEventsPerSecond = 10;

/** The field beside event/channel/data that carries a notification id (pusher-js ignores it). */
export const idField = 'herald_id';
/** The field of `pusher:subscribe` data that asks for a replay after that id. */
export const lastIdField = 'herald_last_id';

const userIdPattern = new RegExp(userIdSchema.pattern, 'u');

/** A socket id as Pusher makes them (`\d+.\d+`), which the server SDKs check the shape of. */
const newSocketId = () => `${randomInt(1, 2 ** 47)}.${randomInt(1, 2 ** 47)}`;

function frame(fields: { event: string; channel?: string; data: string | Record<string, unknown>; user_id?: string; id?: number }): Buffer {
  const { id, ...rest } = fields;
  return textFrame(Buffer.from(JSON.stringify(id === undefined ? rest : { ...rest, [idField]: id })));
}

/** Writes one channel's events to its session's socket, as Pusher frames. */
class PusherSink implements Sink {
  readonly carriesUnread = false;
  constructor(
    private readonly session: PusherSession,
    private readonly channel: string,
    private readonly topic: string | undefined,
    /** The presence member this socket is on this channel, if it is one. */
    private readonly member: string | undefined,
    /** `pusher_internal:subscription_succeeded`'s data (a presence channel's members). */
    private readonly succeeded: () => string,
  ) {}

  /** Whether a notification belongs on this channel: its topic's, or (a user channel) a direct one. */
  private mine(n: Notification): boolean {
    return this.topic === undefined ? n.topic === null && !n.broadcast : n.topic === this.topic;
  }

  private frameOf(ev: OutEvent): Buffer | undefined {
    if (ev.event === 'reload') return frame({ event: 'herald:reload', channel: this.channel, data: ev.json, id: ev.id });
    if (ev.event !== 'notification') return undefined;
    const n = ev.payload as Notification;
    if (!this.mine(n)) return undefined;
    const make = () => frame({ event: pusherEvent(n), channel: this.channel, data: pusherData(n), id: n.id });
    // A topic's frame is the same for every socket; a user channel's names the user.
    return this.topic === undefined ? make() : (ev.frames.pusher ??= make());
  }

  send(ev: OutEvent): void {
    if (ev.exceptSocket === this.session.socketId) return;
    const f = this.frameOf(ev);
    if (f) this.session.writer.writeFrame(f);
  }

  sendMany(evs: readonly OutEvent[]): Promise<void> {
    return this.session.writer.writeMany(evs.map((ev) => this.frameOf(ev)).filter((f): f is Buffer => f !== undefined));
  }

  resumePoint(id: number): void {
    this.session.writer.writeFrame(frame({ event: 'pusher_internal:subscription_succeeded', channel: this.channel, data: this.succeeded(), id }));
  }

  ephemeral(ev: OutEvent): void {
    const e = ev.payload as Ephemeral;
    if (e.exceptSocket === this.session.socketId || (e.exceptUser !== undefined && e.exceptUser === this.member)) return;
    this.session.writer.writeFrame(frame({ event: e.event, channel: this.channel, data: e.data, ...(e.userId !== undefined && { user_id: e.userId }) }));
  }

  /** The session pings the socket once for all its channels. */
  heartbeat(): void {}

  end(): void {
    this.session.end();
  }

  abort(): void {
    this.session.writer.abort();
  }
}

interface Channel {
  sub: Subscription;
  topic: string;
  /** The presence member id, on a presence channel. */
  member?: string;
}

interface PusherMessage {
  event?: unknown;
  channel?: unknown;
  data?: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A presence subscription's `channel_data`: a JSON object with a `user_id` (string or number). */
function presenceMember(channelData: unknown): { userId: string; info: unknown } | undefined {
  if (typeof channelData !== 'string') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(channelData);
  } catch {
    return undefined;
  }
  if (!isObject(parsed)) return undefined;
  const id = parsed.user_id;
  if ((typeof id !== 'string' || id === '') && typeof id !== 'number') return undefined;
  return { userId: String(id), info: parsed.user_info ?? null };
}

/** A `herald_last_id`: a notification id, as a JSON number or a string of digits. */
function lastIdOf(v: unknown): number | undefined | null {
  if (v === undefined) return undefined;
  const n = typeof v === 'string' && /^\d{1,15}$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/**
 * One Pusher client's socket. `app` is undefined when the key in the URL names none: the socket is
 * told so (4001) and closed, as Pusher does, so that pusher-js does not retry.
 */
export class PusherSession {
  readonly socketId = newSocketId();
  readonly writer: WsSink;
  private readonly channels = new Map<string, Channel>();
  private readonly rate: RateBound;
  private readonly clientEvents = new RateBound(clientEventsPerSecond);
  private ended = false;

  constructor(
    private readonly socket: WebSocket,
    raw: Writable,
    private readonly app: PusherApp,
    private readonly ip: string,
    private readonly opts: PusherOptions,
    private readonly log: FastifyBaseLogger,
    private readonly onClose: (s: PusherSession) => void,
  ) {
    this.writer = new WsSink(socket, raw, opts.maxPendingBytes, opts.metrics, opts.flusher, () => {});
    this.rate = new RateBound(opts.maxMessagesPerSecond);
    socket.on('close', () => this.close());
    socket.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    this.send('pusher:connection_established', { socket_id: this.socketId, activity_timeout: opts.activityTimeoutSeconds });
  }

  /** Refuses a socket before anything else: the frame, then the close with the same code. */
  static refuse(socket: WebSocket, code: number, message: string): void {
    socket.send(JSON.stringify({ event: 'pusher:error', data: { code, message } }));
    socket.close(code, message);
  }

  /** Pusher sends the data of its own events as a JSON string. */
  private send(event: string, data: Record<string, unknown>, channel?: string): void {
    this.writer.writeFrame(frame({ event, ...(channel !== undefined && { channel }), data: JSON.stringify(data) }));
  }

  /** `pusher:error`; `code` null for the errors Pusher itself sends without one. */
  private error(code: number | null, message: string): void {
    this.writer.writeFrame(frame({ event: 'pusher:error', data: { code, message } }));
  }

  /**
   * A refused subscription: `pusher:subscription_error` on the channel (which pusher-js and Echo hand
   * to the channel's error callbacks), and `pusher:error` with its code for the connection's listeners.
   */
  private subscriptionError(channel: string, status: number, code: number | null, message: string): void {
    this.writer.writeFrame(frame({ event: 'pusher:subscription_error', channel, data: { type: status === 401 ? 'AuthError' : 'SubscriptionError', error: message, status } }));
    this.error(code, message);
  }

  /** Called once per hub heartbeat interval by the route, for every socket (one timer for all). */
  heartbeat(): void {
    this.writer.heartbeat();
  }

  /** Server-initiated end (shutdown): Pusher clients reconnect at once on 4200. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.writer.end(pusherCode.reconnect);
  }

  private close(): void {
    for (const [name, ch] of this.channels) this.leave(name, ch);
    this.channels.clear();
    this.onClose(this);
  }

  private leave(name: string, ch: Channel): void {
    ch.sub.close();
    if (ch.member !== undefined) this.opts.presence.leave(ch.topic, ch.member);
    this.channels.delete(name);
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    if (!this.rate.take()) {
      this.socket.close(1008, 'too many messages');
      return;
    }
    let msg: PusherMessage;
    try {
      msg = JSON.parse(isBinary ? '' : (data as Buffer).toString('utf8')) as PusherMessage;
    } catch {
      return this.error(null, 'messages must be JSON text frames');
    }
    if (!isObject(msg) || typeof msg.event !== 'string') return this.error(null, 'a message needs an "event"');
    const d = isObject(msg.data) ? msg.data : {};
    switch (msg.event) {
      case 'pusher:ping':
        return this.send('pusher:pong', {});
      case 'pusher:pong':
        return;
      case 'pusher:subscribe':
        return this.subscribe(d);
      case 'pusher:unsubscribe': {
        const ch = typeof d.channel === 'string' ? this.channels.get(d.channel) : undefined;
        if (ch) this.leave(d.channel as string, ch);
        return;
      }
      default:
        if (msg.event.startsWith('client-')) return this.clientEvent(msg.event, msg.channel, msg.data);
        return this.error(null, `unsupported event "${msg.event.slice(0, 64)}"`);
    }
  }

  private subscribe(d: Record<string, unknown>): void {
    const name = d.channel;
    if (!isChannelName(name)) return this.error(null, 'the channel name is missing or invalid (letters, digits and _-=@,.; up to 164)');
    if (this.channels.has(name)) return;
    if (this.channels.size >= this.opts.maxTopics) return this.subscriptionError(name, 400, null, `at most ${this.opts.maxTopics} channels per connection`);
    const kind = channelKind(name);
    const presence = kind === 'presence' ? presenceMember(d.channel_data) : undefined;
    if (kind === 'presence' && presence === undefined) {
      return this.subscriptionError(name, 400, null, 'a presence subscription needs channel_data: a JSON object with a user_id');
    }
    if (kind !== 'public' && !channelAuthValid(this.app, d.auth, this.socketId, name, kind === 'presence' ? (d.channel_data as string) : undefined)) {
      return this.subscriptionError(name, 401, pusherCode.unauthorized, `invalid signature for channel ${name}`);
    }
    const lastId = lastIdOf(d[lastIdField]);
    if (lastId === null) return this.subscriptionError(name, 400, null, `${lastIdField} must be a notification id`);
    const user = this.opts.userChannel.userOf(name);
    const userChannel = user !== undefined && kind === 'private' && user.length <= userIdSchema.maxLength && userIdPattern.test(user);
    if (lastId !== undefined) {
      const refusal = this.opts.resumes.take(userChannel ? user : `pusher:${this.socketId}`, this.ip);
      if (refusal) return this.subscriptionError(name, 429, null, refusal.message);
    }
    const topic = topicOf(this.app, name);
    const members = () => {
      const all = this.opts.presence.members(topic);
      return JSON.stringify({ presence: { ids: [...all.keys()], hash: Object.fromEntries(all), count: all.size } });
    };
    // A stream's user is the one whose direct notifications it gets: none (an id no user can have)
    // except on a user channel, whose topics are none.
    const sink = new PusherSink(this, name, userChannel ? undefined : topic, presence?.userId, presence ? members : () => '{}');
    const sub = new Subscription(this.opts, userChannel ? user : '', userChannel ? [] : [topic], sink);
    this.channels.set(name, { sub, topic, ...(presence && { member: presence.userId }) });
    // Joined in the same tick as the member list it will be sent is read: no join or leave falls between.
    if (presence) this.opts.presence.join(topic, presence.userId, presence.info);
    sub.join();
    sub.start(lastId).catch((err: unknown) => {
      this.log.error({ err }, 'pusher catch-up failed; closing the socket so the client reconnects');
      this.end();
    });
  }

  private clientEvent(event: string, channel: unknown, data: unknown): void {
    if (!this.app.clientEvents) return this.error(null, 'client events are not enabled for this app (HERALD_PUSHER_APPS flag client-events)');
    const ch = typeof channel === 'string' ? this.channels.get(channel) : undefined;
    if (!ch || channelKind(channel as string) === 'public') {
      return this.error(null, 'client events go to a private or presence channel this connection is subscribed to');
    }
    if (!this.clientEvents.take()) return this.error(pusherCode.clientEventRateLimited, `at most ${clientEventsPerSecond} client events a second`);
    const e: Ephemeral = {
      topic: ch.topic,
      event,
      data: typeof data === 'string' ? data : JSON.stringify(data ?? {}),
      exceptSocket: this.socketId,
      ...(ch.member !== undefined && { userId: ch.member }),
    };
    this.opts.bus.publish({ kind: 'ephemeral', ...e }).catch((err: unknown) => this.log.error({ err }, 'bus publish of a client event failed'));
  }
}
