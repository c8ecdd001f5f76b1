import { Redis } from 'ioredis';
import type { Hub } from '../stream/hub.js';

/** Whether a user has a stream open on any instance: a push in `offline` mode goes only to users without one. */
export interface Presence {
  isOnline(user: string): Promise<boolean>;
  close(): Promise<void>;
}

/** One instance (memory bus): the hub knows every open stream. */
export class LocalPresence implements Presence {
  constructor(private readonly hub: Hub) {}

  async isOnline(user: string): Promise<boolean> {
    return this.hub.streamsOf(user) > 0;
  }

  async close(): Promise<void> {}
}

/**
 * Several instances (Redis bus): each instance records its online users in Redis, one sorted set per
 * user of (instance, expiry). An instance marks a user on their first stream and unmarks them on
 * their last; it renews all its marks every `ttlMs / 3`, so the marks of an instance that died
 * without unmarking expire within `ttlMs` (until then its users count as online and get no push
 * in `offline` mode: a late push rather than a doubled one).
 */
export class RedisPresence implements Presence {
  private readonly redis: Redis;
  private readonly instance = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  private readonly timer: NodeJS.Timeout;

  constructor(
    url: string,
    private readonly hub: Hub,
    private readonly prefix: string,
    private readonly ttlMs = 30_000,
  ) {
    this.redis = new Redis(url, { maxRetriesPerRequest: 2, lazyConnect: false });
    // Errors surface on the commands that fail; without a listener ioredis would log each retry.
    this.redis.on('error', () => {});
    hub.onPresence((user, online) => void (online ? this.mark([user]) : this.unmark(user)).catch(() => {}));
    this.timer = setInterval(() => void this.mark([...hub.users()]).catch(() => {}), ttlMs / 3);
    this.timer.unref();
  }

  private key(user: string): string {
    return `${this.prefix}:presence:${user}`;
  }

  private async mark(users: string[]): Promise<void> {
    if (users.length === 0) return;
    const until = Date.now() + this.ttlMs;
    const batch = this.redis.multi();
    for (const u of users) batch.zadd(this.key(u), until, this.instance).pexpire(this.key(u), this.ttlMs);
    await batch.exec();
  }

  private async unmark(user: string): Promise<void> {
    await this.redis.zrem(this.key(user), this.instance);
  }

  async isOnline(user: string): Promise<boolean> {
    if (this.hub.streamsOf(user) > 0) return true;
    return (await this.redis.zcount(this.key(user), Date.now(), '+inf')) > 0;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    // This instance's users are offline here from now: unmarked so other instances push to them at once.
    await Promise.all([...this.hub.users()].map((u) => this.unmark(u))).catch(() => {});
    this.redis.disconnect();
  }
}
