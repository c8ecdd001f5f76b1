// @herald/node: publish to Herald from a Node.js app, and mint the subscriber tokens its browsers use.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSigner } from 'fast-jwt';
import type { paths } from './openapi.js';

type PublishOperation = paths['/notifications']['post'];
type PublishBody = PublishOperation['requestBody']['content']['application/json'];

/** A notification as Herald answers a publish: stored, with its id, time and recipients. */
export type Notification = PublishOperation['responses']['201']['content']['application/json'];

/** Who a notification is for: exactly one of these (the others cannot be given alongside). */
export type Target =
  | { user: string; users?: never; topic?: never; broadcast?: never }
  | { users: string[]; user?: never; topic?: never; broadcast?: never }
  | { topic: string; user?: never; users?: never; broadcast?: never }
  | { broadcast: true; user?: never; users?: never; topic?: never };

/** What a notification says (title, body, data, type, url, icon, actor, actions), from Herald's schema. */
export type Content = Omit<PublishBody, 'user' | 'users' | 'topic' | 'broadcast' | 'data'> & { data?: Record<string, unknown> | null };

export type PublishInput = Content & Target;

export interface PublishOptions {
  /**
   * Herald answers a retried publish with this key with the first result instead of a duplicate.
   * Default: a fresh random key per `publish()` call, reused by that call's own retries.
   */
  idempotencyKey?: string;
}

export interface HeraldOptions {
  /** Herald's base URL, e.g. `https://herald.example.com`. */
  url: string;
  /** The publisher key (HERALD_PUBLISHER_KEY), or a publish-scoped JWT: sent as the bearer credential. */
  publisherKey?: string;
  /** HERALD_JWT_SECRET: needed only by `mintSubscriberToken`. */
  jwtSecret?: string;
  /** HERALD_JWT_AUDIENCE, if Herald requires one: put in minted tokens. */
  audience?: string;
  /** Retries after the first attempt, on network errors, 429 and 5xx (never on other 4xx). Default 3. */
  retries?: number;
  /** The first retry's delay; each next one doubles, up to `maxDelayMs`, each with jitter. Default 200. */
  minDelayMs?: number;
  /** Default 5000; a Retry-After longer than this is still honoured. */
  maxDelayMs?: number;
  /** One attempt's time limit. Default 10000. */
  timeoutMs?: number;
}

/** A refusal from Herald: its HTTP status and the stable `code` of Herald's error catalogue. */
export class HeraldError extends Error {
  override readonly name = 'HeraldError';
  constructor(
    readonly status: number,
    /** e.g. `validation_failed`, `publisher_credential_invalid`, `publish_rate_limited`; `network_error` when Herald was not reached. */
    readonly code: string,
    message: string,
    /** Whether retrying the same request could succeed (network errors, 429, 5xx). */
    readonly retryable: boolean,
    options: { cause?: unknown; retryAfterMs?: number } = {},
  ) {
    super(message, { cause: options.cause });
    this.retryAfterMs = options.retryAfterMs;
  }

  /** How long Herald asked to wait before a retry (its Retry-After header), if it did. */
  readonly retryAfterMs: number | undefined;
}

export interface SubscriberTokenOptions {
  /** Topics (or prefixes ending in `*`) the token may subscribe to. */
  topics?: string[];
  /** Lifetime: milliseconds or a string such as `'15m'`, `'12h'`. Default `'1h'`. */
  expiresIn?: number | string;
}

const retryable = (status: number) => status === 429 || status >= 500;

export class Herald {
  private readonly base: string;
  private readonly retries: number;
  private readonly minDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly timeoutMs: number;

  constructor(private readonly options: HeraldOptions) {
    this.base = options.url.replace(/\/+$/, '');
    this.retries = options.retries ?? 3;
    this.minDelayMs = options.minDelayMs ?? 200;
    this.maxDelayMs = options.maxDelayMs ?? 5000;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /**
   * Publishes one notification; resolves once Herald has committed it (a `201`). Retries network
   * errors, 429 and 5xx with exponential backoff and jitter (or Retry-After), under one idempotency
   * key, so a retry after a lost answer never publishes twice. Throws `HeraldError`.
   */
  async publish(input: PublishInput, options: PublishOptions = {}): Promise<Notification> {
    if (!this.options.publisherKey) throw new TypeError('Herald: publish needs the publisherKey option');
    const key = options.idempotencyKey ?? randomUUID();
    const body = JSON.stringify(input);
    for (let attempt = 0; ; attempt++) {
      let wait: number | undefined;
      try {
        return await this.attempt(body, key);
      } catch (err) {
        if (!(err instanceof HeraldError) || !err.retryable || attempt >= this.retries) throw err;
        wait = err.retryAfterMs;
      }
      await sleep(wait ?? this.backoff(attempt));
    }
  }

  /** Full jitter between half and all of the exponential delay, so clients retrying together spread out. */
  private backoff(attempt: number): number {
    const ceiling = Math.min(this.maxDelayMs, this.minDelayMs * 2 ** attempt);
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  private async attempt(body: string, key: string): Promise<Notification> {
    let res: Response;
    try {
      res = await fetch(`${this.base}/notifications`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.options.publisherKey}`, 'content-type': 'application/json', 'idempotency-key': key },
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new HeraldError(0, 'network_error', `Herald not reached: ${(err as Error).message}`, true, { cause: err });
    }
    const text = await res.text();
    if (res.status === 201) return JSON.parse(text) as Notification;
    throw refusal(res, text);
  }

  /**
   * A subscriber JWT for `user`, signed with HERALD_JWT_SECRET (HS256, as Herald verifies): what the
   * app's own login or token route hands its browser for `/events`, `/ws` and `/notifications`.
   */
  mintSubscriberToken(user: string, options: SubscriberTokenOptions = {}): string {
    const { jwtSecret, audience } = this.options;
    if (!jwtSecret) throw new TypeError('Herald: mintSubscriberToken needs the jwtSecret option');
    const sign = createSigner({ key: jwtSecret, algorithm: 'HS256', expiresIn: options.expiresIn ?? '1h', ...(audience ? { aud: audience } : {}) });
    return sign({ sub: user, ...(options.topics ? { topics: options.topics } : {}) });
  }
}

/** The error for a non-201 answer, with Herald's code and message when its body is Herald's error JSON. */
function refusal(res: Response, text: string): HeraldError {
  let parsed: { code?: unknown; message?: unknown } = {};
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    // Not Herald's JSON (a proxy's page): the status says what happened.
  }
  const code = typeof parsed.code === 'string' ? parsed.code : `http_${res.status}`;
  const message = typeof parsed.message === 'string' ? parsed.message : `Herald answered ${res.status}`;
  const header = res.headers.get('retry-after');
  const after = header === null ? NaN : Number(header);
  return new HeraldError(res.status, code, message, retryable(res.status), { retryAfterMs: after >= 0 ? after * 1000 : undefined });
}
