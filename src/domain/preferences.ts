import type { FastifyBaseLogger } from 'fastify';
import type { Bus } from '../bus/bus.js';
import type { Store } from '../store/store.js';
import type { Mutes, Notification, Preferences } from '../types.js';

/** What a user has before choosing anything: everything on, push only while offline, no quiet hours. */
export function defaultPreferences(): Preferences {
  return { push: 'offline', quietHours: null, types: {}, topics: {} };
}

/** The types and topics a user switched off in-app (`inapp: false`). */
export function inappMutes(p: Preferences): Mutes {
  const off = (m: Preferences['types']) => Object.keys(m).filter((k) => m[k]!.inapp === false);
  return { types: off(p.types), topics: off(p.topics) };
}

export function hasMutes(m: Mutes): boolean {
  return m.types.length > 0 || m.topics.length > 0;
}

/**
 * The muting rule, the one definition of it: a notification is muted in-app for a user when it is not
 * critical and its type or its topic is switched off. The hub applies it to live delivery; the store's
 * audience queries hold its SQL form (the `inapp_mutes` rows, which are `inappMutes` of the stored
 * preferences), and the store contract test checks that both agree.
 */
export function isMuted(m: { types: ReadonlySet<string>; topics: ReadonlySet<string> }, n: Pick<Notification, 'type' | 'topic' | 'critical'>): boolean {
  if (n.critical) return false;
  return (n.type !== null && m.types.has(n.type)) || (n.topic !== null && m.topics.has(n.topic));
}

/** A time zone the runtime knows (IANA name, such as Europe/Paris), as Intl decides it. */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** A user's preferences, whichever transport asks: committed, then announced so every instance re-reads them. */
export class PreferenceBook {
  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly log: FastifyBaseLogger,
  ) {}

  async get(user: string): Promise<Preferences> {
    return (await this.store.preferences(user)) ?? defaultPreferences();
  }

  /** Replaces the whole document. A failed announce leaves other instances' live filters stale until the user's streams reconnect. */
  async put(user: string, p: Preferences): Promise<Preferences> {
    await this.store.setPreferences(user, p, inappMutes(p));
    await this.bus.publish({ kind: 'preferences', user }).catch((err: unknown) => this.log.error({ err }, 'bus publish of a preferences change failed'));
    return p;
  }
}

interface MuteSets {
  types: ReadonlySet<string>;
  topics: ReadonlySet<string>;
}

function addTo(map: Map<string, Set<string>>, key: string, user: string): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(user);
}

function removeFrom(map: Map<string, Set<string>>, key: string, user: string): void {
  const set = map.get(key);
  if (set && set.delete(user) && set.size === 0) map.delete(key);
}

/**
 * The in-app mutes of a set of users (the hub's: those with a stream open here), indexed by muted type
 * and topic so that finding who muted a notification costs two map lookups, however many users there
 * are; `isMuted` decides for each candidate. Users with nothing muted are not in it at all.
 */
export class MuteIndex {
  private readonly byUser = new Map<string, MuteSets>();
  private readonly byType = new Map<string, Set<string>>();
  private readonly byTopic = new Map<string, Set<string>>();

  set(user: string, m: Mutes): void {
    this.delete(user);
    if (!hasMutes(m)) return;
    this.byUser.set(user, { types: new Set(m.types), topics: new Set(m.topics) });
    for (const t of m.types) addTo(this.byType, t, user);
    for (const t of m.topics) addTo(this.byTopic, t, user);
  }

  delete(user: string): void {
    const m = this.byUser.get(user);
    if (!m) return;
    this.byUser.delete(user);
    for (const t of m.types) removeFrom(this.byType, t, user);
    for (const t of m.topics) removeFrom(this.byTopic, t, user);
  }

  isMuted(user: string, n: Pick<Notification, 'type' | 'topic' | 'critical'>): boolean {
    const m = this.byUser.get(user);
    return m !== undefined && isMuted(m, n);
  }

  /** The users `n` is muted for; null when none (the common case, found without allocating). */
  mutedUsers(n: Pick<Notification, 'type' | 'topic' | 'critical'>): ReadonlySet<string> | null {
    if (this.byUser.size === 0 || n.critical) return null;
    const byType = n.type === null ? undefined : this.byType.get(n.type);
    const byTopic = n.topic === null ? undefined : this.byTopic.get(n.topic);
    if (!byType && !byTopic) return null;
    const out = new Set<string>();
    for (const set of [byType, byTopic]) for (const u of set ?? []) if (this.isMuted(u, n)) out.add(u);
    return out.size > 0 ? out : null;
  }
}

/** Minutes since local midnight of a `HH:MM`. */
const minutesOf = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/**
 * When the quiet hours that `now` falls in end (ms since the epoch), or null outside them. The window
 * runs from `start` up to `end` local time, across midnight when `end` is earlier; `start` equal to
 * `end` is an empty window. The end is found by counting local minutes forward, so on a day whose
 * clock changes (DST) it may be off by the change, an hour at most.
 */
export function quietHoursEnd(q: Preferences['quietHours'], now: number): number | null {
  if (!q) return null;
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone: q.timeZone, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).formatToParts(now);
  const part = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  const local = part('hour') * 60 + part('minute');
  const start = minutesOf(q.start);
  const end = minutesOf(q.end);
  const inside = start < end ? local >= start && local < end : start > end && (local >= start || local < end);
  if (!inside) return null;
  const minutesLeft = (end - local + 1440) % 1440;
  return now - (now % 1000) - part('second') * 1000 + minutesLeft * 60_000;
}

export type PushDecision = { send: true } | { send: false } | { holdUntil: number };

/**
 * Whether a notification goes out by push to a user now, by their preferences: `push: never` sends
 * nothing; `offline` only while they have no open stream anywhere; a type or topic with `push: false`
 * is not pushed; in quiet hours it is held until they end. A critical notification ignores the type
 * and topic switches and quiet hours (but not `never`: that user takes no push at all).
 */
export function pushDecision(p: Preferences, n: Pick<Notification, 'type' | 'topic' | 'critical'>, online: boolean, now: number): PushDecision {
  if (p.push === 'never' || (p.push === 'offline' && online)) return { send: false };
  if (n.critical) return { send: true };
  const off = (m: Preferences['types'], key: string | null) => key !== null && m[key]?.push === false;
  if (off(p.types, n.type) || off(p.topics, n.topic)) return { send: false };
  const until = quietHoursEnd(p.quietHours, now);
  return until === null ? { send: true } : { holdUntil: until };
}
