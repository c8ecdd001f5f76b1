// The Pusher protocol's rules, free of HTTP and sockets: its apps, request and channel signatures,
// channel names, and how a Pusher event maps onto a Herald notification and back.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Notification } from '../types.js';

/** One Pusher app from HERALD_PUSHER_APPS. */
export interface PusherApp {
  id: string;
  key: string;
  secret: string;
  /** Whether sockets may send `client-*` events on private and presence channels. */
  clientEvents: boolean;
}

/** Where every Pusher channel lives among Herald's topics: `pusher/<appId>/<channel>`. */
export const pusherTopicRoot = 'pusher/';

/** Pusher's channel name rule (letters, digits, `_-=@,.;`, at most 164 characters). */
export const channelSchema = { type: 'string', minLength: 1, maxLength: 164, pattern: '^[A-Za-z0-9_\\-=@,.;]+$' } as const;
const channelName = new RegExp(channelSchema.pattern);

export const isChannelName = (s: unknown): s is string => typeof s === 'string' && s.length <= channelSchema.maxLength && channelName.test(s);

export type ChannelKind = 'public' | 'private' | 'presence';

export function channelKind(channel: string): ChannelKind {
  if (channel.startsWith('presence-')) return 'presence';
  return channel.startsWith('private-') ? 'private' : 'public';
}

export const topicOf = (app: PusherApp, channel: string) => `${pusherTopicRoot}${app.id}/${channel}`;

/** The channel of a topic of `app`, or undefined for a topic outside it. */
export function channelOfTopic(app: PusherApp, topic: string): string | undefined {
  const prefix = `${pusherTopicRoot}${app.id}/`;
  return topic.startsWith(prefix) ? topic.slice(prefix.length) : undefined;
}

/**
 * The Laravel user channel: HERALD_PUSHER_USER_CHANNEL with `{id}` in place of the user id
 * (`private-App.Models.User.{id}`). A publish to it is a direct notification to that user, and a
 * socket subscribed to it receives that user's direct notifications.
 */
export class UserChannel {
  private readonly prefix: string;
  private readonly suffix: string;

  constructor(pattern: string) {
    const at = pattern.indexOf('{id}');
    this.prefix = pattern.slice(0, at);
    this.suffix = pattern.slice(at + '{id}'.length);
  }

  /** The user a channel name stands for, or undefined if it is not a user channel. */
  userOf(channel: string): string | undefined {
    if (!channel.startsWith(this.prefix) || !channel.endsWith(this.suffix)) return undefined;
    const id = channel.slice(this.prefix.length, channel.length - this.suffix.length);
    return id === '' ? undefined : id;
  }

  channelOf(user: string): string {
    return `${this.prefix}${user}${this.suffix}`;
  }
}

const hmac = (secret: string, text: string) => createHmac('sha256', secret).update(text).digest('hex');

/** Compares two hex signatures without leaking where they differ. */
function sameSignature(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** How far an HTTP API request's `auth_timestamp` may be from this server's clock. */
export const signatureWindowSeconds = 600;

/**
 * Why a signed HTTP API request is refused, or undefined if it is sound: the `auth_*` parameters are
 * present, the key is the app's, the timestamp is within `signatureWindowSeconds`, and `auth_signature`
 * is the HMAC-SHA256 of "METHOD\nPATH\nquery" (every other parameter, keys lowercased, sorted, joined
 * by `&`, values as sent before URL encoding). `body_md5` is checked against the body separately.
 */
export function requestSignatureProblem(app: PusherApp, method: string, path: string, query: URLSearchParams, nowSeconds: number): string | undefined {
  const signature = query.get('auth_signature');
  const timestamp = query.get('auth_timestamp');
  if (query.get('auth_key') === null || timestamp === null || query.get('auth_version') === null || signature === null) {
    return 'auth_key, auth_timestamp, auth_version and auth_signature are required';
  }
  if (query.get('auth_key') !== app.key) return 'auth_key is not this app’s key';
  if (!/^\d+$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > signatureWindowSeconds) {
    return `auth_timestamp must be within ${signatureWindowSeconds} s of the server’s clock (${nowSeconds})`;
  }
  const params = [...query.entries()]
    .filter(([k]) => k !== 'auth_signature')
    .map(([k, v]) => [k.toLowerCase(), v] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  if (!sameSignature(signature, hmac(app.secret, `${method}\n${path}\n${params}`))) return 'auth_signature does not match';
  return undefined;
}

export const bodyMd5 = (body: Buffer) => createHash('md5').update(body).digest('hex');

/**
 * Whether `auth` (`key:signature`, from the app's auth endpoint) authorises `socketId` on `channel`:
 * HMAC-SHA256 of `socket_id:channel`, or `socket_id:channel:channel_data` on presence channels.
 */
export function channelAuthValid(app: PusherApp, auth: unknown, socketId: string, channel: string, channelData: string | undefined): boolean {
  if (typeof auth !== 'string') return false;
  const colon = auth.indexOf(':');
  if (colon < 0 || auth.slice(0, colon) !== app.key) return false;
  const text = channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
  return sameSignature(auth.slice(colon + 1), hmac(app.secret, text));
}

/**
 * A Pusher event's `data` (a string on the wire) as Herald notification fields. Herald's `data` is an
 * object: a string holding a JSON object is kept as that object (Herald clients read it as JSON), and
 * anything else (a plain string, an array, a number) is kept as it was sent in `body`, `data` null.
 */
export function notificationFields(event: string, data: string): { title: string; type: string; data?: Record<string, unknown>; body?: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    parsed = undefined;
  }
  const isObject = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed);
  return isObject ? { title: event, type: event, data: parsed as Record<string, unknown> } : { title: event, type: event, body: data };
}

/** The `data` string a Pusher client gets for a notification: what `notificationFields` took it from. */
export function pusherData(n: Notification): string {
  if (n.data !== null) return JSON.stringify(n.data);
  return n.body ?? '';
}

/** The Pusher event name of a notification: its type (the event name it was published with), else "notification". */
export const pusherEvent = (n: Notification) => n.type ?? 'notification';
