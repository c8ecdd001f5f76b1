// Who is on each Pusher presence channel, across instances. Each instance holds its own members (with
// how many of its sockets each has) and, from the bus, every other instance's, by instance id; a member
// is present while any instance has them. Joins and leaves reach clients through the hub.
import { randomUUID } from 'node:crypto';
import type { Bus } from '../bus/bus.js';
import type { BusMessage, PresenceMembers } from '../types.js';
import type { Hub } from './hub.js';
import { OutEvent } from './out-event.js';

interface LocalMember {
  info: unknown;
  sockets: number;
}

interface Remote {
  members: Map<string, Map<string, unknown>>;
  /** When this instance was last heard of (ms, performance clock). */
  seenAt: number;
}

/** How many refresh intervals an instance may stay silent before its members are dropped (it was killed). */
const missedRefreshes = 3;

export class PresenceRegistry {
  /** This instance's id on the bus: its own messages come back to it and are skipped. */
  readonly instance = randomUUID();
  private readonly local = new Map<string, Map<string, LocalMember>>();
  private readonly remote = new Map<string, Remote>();
  private readonly unsubscribe: () => void;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly bus: Bus,
    private readonly hub: Hub,
    /**
     * Every this often an instance with members announces them all, and instances not heard of for
     * `missedRefreshes` intervals are forgotten: a killed instance's members leave within that time.
     */
    private readonly refreshMs: number,
    private readonly onBusError: (err: unknown) => void,
  ) {
    this.unsubscribe = bus.subscribe((msg) => this.onMessage(msg));
    this.timer = setInterval(() => this.refresh(), refreshMs);
    this.timer.unref();
    this.announce({ kind: 'presence-hello', instance: this.instance });
  }

  private announce(msg: BusMessage): void {
    this.bus.publish(msg).catch(this.onBusError);
  }

  /** The members of `topic` on every instance: user id to user info. */
  members(topic: string): Map<string, unknown> {
    const all = new Map<string, unknown>();
    for (const r of this.remote.values()) for (const [id, info] of r.members.get(topic) ?? []) all.set(id, info);
    for (const [id, m] of this.local.get(topic) ?? []) all.set(id, m.info);
    return all;
  }

  /** The presence topics with at least one member anywhere. */
  topics(): Set<string> {
    const topics = new Set(this.local.keys());
    for (const r of this.remote.values()) for (const t of r.members.keys()) topics.add(t);
    return topics;
  }

  private present(topic: string, userId: string): boolean {
    if (this.local.get(topic)?.has(userId)) return true;
    for (const r of this.remote.values()) if (r.members.get(topic)?.has(userId)) return true;
    return false;
  }

  /** One more socket of `userId` on `topic`, here. Call it in the same tick as the socket joins the hub. */
  join(topic: string, userId: string, info: unknown): void {
    let members = this.local.get(topic);
    if (!members) this.local.set(topic, (members = new Map()));
    const m = members.get(userId);
    if (m) {
      m.sockets++;
      return;
    }
    const wasPresent = this.present(topic, userId);
    members.set(userId, { info, sockets: 1 });
    if (!wasPresent) this.emit(topic, userId, 'pusher_internal:member_added', { user_id: userId, user_info: info });
    this.announce({ kind: 'presence-member', instance: this.instance, topic, userId, userInfo: info, added: true });
  }

  leave(topic: string, userId: string): void {
    const members = this.local.get(topic);
    const m = members?.get(userId);
    if (!members || !m || --m.sockets > 0) return;
    members.delete(userId);
    if (members.size === 0) this.local.delete(topic);
    if (!this.present(topic, userId)) this.emit(topic, userId, 'pusher_internal:member_removed', { user_id: userId });
    this.announce({ kind: 'presence-member', instance: this.instance, topic, userId, userInfo: null, added: false });
  }

  private emit(topic: string, userId: string, event: string, data: Record<string, unknown>): void {
    this.hub.ephemeral(topic, OutEvent.ephemeral({ topic, event, data: JSON.stringify(data), exceptUser: userId }));
  }

  private onMessage(msg: BusMessage): void {
    if (!msg.kind.startsWith('presence-') || !('instance' in msg) || msg.instance === this.instance) return;
    switch (msg.kind) {
      case 'presence-hello':
        if (this.local.size > 0) this.announce(this.state());
        return;
      case 'presence-member':
        return this.remoteChange(msg.instance, msg.topic, msg.userId, msg.added ? msg.userInfo : undefined, msg.added);
      case 'presence-state':
        return this.replaceRemote(msg.instance, msg.members);
      case 'presence-gone':
        return this.replaceRemote(msg.instance, {});
      default:
    }
  }

  private remoteOf(instance: string): Remote {
    let r = this.remote.get(instance);
    if (!r) this.remote.set(instance, (r = { members: new Map(), seenAt: 0 }));
    r.seenAt = performance.now();
    return r;
  }

  private remoteChange(instance: string, topic: string, userId: string, info: unknown, added: boolean): void {
    const r = this.remoteOf(instance);
    const wasPresent = this.present(topic, userId);
    let members = r.members.get(topic);
    if (added) {
      if (!members) r.members.set(topic, (members = new Map()));
      members.set(userId, info);
      if (!wasPresent) this.emit(topic, userId, 'pusher_internal:member_added', { user_id: userId, user_info: info });
      return;
    }
    if (!members?.delete(userId)) return;
    if (members.size === 0) r.members.delete(topic);
    if (!this.present(topic, userId)) this.emit(topic, userId, 'pusher_internal:member_removed', { user_id: userId });
  }

  /** Takes an instance's whole state (its announcement, or nothing once it has gone), telling clients what changed. */
  private replaceRemote(instance: string, members: PresenceMembers): void {
    const before = this.remote.get(instance)?.members ?? new Map<string, Map<string, unknown>>();
    const after = new Map(Object.entries(members).map(([topic, users]) => [topic, new Map(Object.entries(users))]));
    for (const [topic, users] of before) {
      for (const userId of users.keys()) if (!after.get(topic)?.has(userId)) this.remoteChange(instance, topic, userId, undefined, false);
    }
    for (const [topic, users] of after) {
      for (const [userId, info] of users) if (!before.get(topic)?.has(userId)) this.remoteChange(instance, topic, userId, info, true);
    }
    if (Object.keys(members).length === 0) this.remote.delete(instance);
    else this.remoteOf(instance);
  }

  private state(): BusMessage {
    const members: PresenceMembers = {};
    for (const [topic, users] of this.local) members[topic] = Object.fromEntries([...users].map(([id, m]) => [id, m.info]));
    return { kind: 'presence-state', instance: this.instance, members };
  }

  private refresh(): void {
    if (this.local.size > 0) this.announce(this.state());
    const cutoff = performance.now() - missedRefreshes * this.refreshMs;
    for (const [instance, r] of this.remote) if (r.seenAt < cutoff) this.replaceRemote(instance, {});
  }

  /** Graceful stop: the other instances forget this one's members at once. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.unsubscribe();
    if (this.local.size > 0) await this.bus.publish({ kind: 'presence-gone', instance: this.instance }).catch(this.onBusError);
  }
}
