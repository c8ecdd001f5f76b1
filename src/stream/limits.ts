// What one client may cost through its streams: open streams per user, how fast it may act (a token
// bucket, for WebSocket messages), and reconnect churn: a stream opened with a resume point costs a
// store read and a replay of up to HERALD_CATCHUP_LIMIT notifications, so how often one user, or one
// client address, may do it is bounded.
import type { FastifyRequest } from 'fastify';
import { errors } from '../errors.js';
import { clientKey } from '../http/connections.js';
import type { Hub } from './hub.js';

/**
 * How fast one client may act: a token bucket holding `count` tokens, refilled at `count` per `perMs`
 * (a second unless told), so short bursts pass and sustained flooding does not.
 */
export class RateBound {
  private tokens: number;
  private last = performance.now();

  constructor(
    private readonly count: number,
    private readonly perMs = 1000,
  ) {
    this.tokens = count;
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.count, this.tokens + ((now - this.last) * this.count) / this.perMs);
    this.last = now;
  }

  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until `take` would succeed; 0 if it would now. */
  waitMs(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : ((1 - this.tokens) * this.perMs) / this.count;
  }

  /** Refilled to the brim, so no different from a fresh bound: a map of bounds may forget it. */
  full(): boolean {
    this.refill();
    return this.tokens >= this.count;
  }
}

/** preHandler after `requireUser`: refuses a stream past the per-user limit before any stream header or upgrade. */
export function streamLimit(hub: Hub, max: number) {
  return async (request: FastifyRequest): Promise<void> => {
    if (hub.streamsOf(request.userId) >= max) throw errors.tooManyStreams(max);
  };
}


/** Resume rates are counted per minute: bursts of up to the rate pass, a steady flood does not. */
const windowMs = 60_000;

/** One RateBound per key; a key idle long enough for its bound to refill is forgotten, so memory stays bounded. */
class KeyedRate {
  private readonly bounds = new Map<string, RateBound>();
  private sweptAt = performance.now();

  constructor(readonly count: number) {}

  waitMs(key: string): number {
    return this.bounds.get(key)?.waitMs() ?? 0;
  }

  take(key: string): void {
    let bound = this.bounds.get(key);
    if (!bound) this.bounds.set(key, (bound = new RateBound(this.count, windowMs)));
    bound.take();
    this.sweep();
  }

  private sweep(): void {
    const now = performance.now();
    if (now - this.sweptAt < windowMs) return;
    this.sweptAt = now;
    for (const [key, bound] of this.bounds) if (bound.full()) this.bounds.delete(key);
  }
}

/** Why a resume was refused, and when to retry. */
export interface ResumeRefusal {
  retryAfterSeconds: number;
  message: string;
}

export class ResumeLimiter {
  private readonly perUser: KeyedRate | undefined;
  private readonly perIp: KeyedRate | undefined;

  /** Rates per minute; 0 turns that limit off. */
  constructor(perUser: number, perIp: number) {
    this.perUser = perUser > 0 ? new KeyedRate(perUser) : undefined;
    this.perIp = perIp > 0 ? new KeyedRate(perIp) : undefined;
  }

  /** Counts one resume by `user` from `ip`, or refuses it (counting nothing) when either is over its rate. */
  take(user: string, ip: string): ResumeRefusal | undefined {
    const address = clientKey(ip);
    const userWait = this.perUser?.waitMs(user) ?? 0;
    const ipWait = this.perIp?.waitMs(address) ?? 0;
    if (userWait > 0 || ipWait > 0) {
      const [wait, who, rate] = userWait >= ipWait ? [userWait, 'user', this.perUser!.count] : [ipWait, 'client address', this.perIp!.count];
      const retryAfterSeconds = Math.max(1, Math.ceil(wait / 1000));
      return {
        retryAfterSeconds,
        message: `too many resumed streams (Last-Event-ID): at most ${rate} a minute per ${who}; retry in ${retryAfterSeconds} s`,
      };
    }
    this.perUser?.take(user);
    this.perIp?.take(address);
    return undefined;
  }
}

/**
 * preHandler after `requireUser` and `streamLimit`: refuses a stream open that carries a resume point
 * past the rate, with `429` and `Retry-After`, before the store is read.
 */
export function resumeLimit(limiter: ResumeLimiter, resumes: (request: FastifyRequest) => boolean) {
  return async (request: FastifyRequest): Promise<void> => {
    if (!resumes(request)) return;
    const refusal = limiter.take(request.userId, request.ip);
    if (refusal) throw errors.resumeRateLimited(refusal);
  };
}
