// Every environment variable Herald reads is read here, validated once, and listed in the README.
// Nothing else in src/ touches process.env.
import { BlockList, isIP } from 'node:net';
import { isChannelName, type PusherApp } from './domain/pusher.js';
import { parsePatternList } from './domain/topics.js';

/** The HTTP server: where it listens, what one request may take, how it stops. */
export interface ServerConfig {
  host: string;
  port: number;
  /** Largest request body, bytes. */
  bodyLimit: number;
  /** How long a client may take to send a whole request (head and body); a stream's request is complete once sent. */
  requestTimeoutMs: number;
  /** How long a graceful stop waits for in-flight requests before cutting their connections. */
  shutdownGraceMs: number;
  /**
   * Connections the kernel queues before the server accepts them (capped by net.core.somaxconn). Past
   * it, connects are dropped and retried by the client's TCP after 1, 3, 7, 15 s...: a reconnect storm
   * after a restart would take that long (Node's default is 511).
   */
  backlog: number;
  logLevel: string;
  /** `pretty`: pino-pretty's lines for a person at a terminal; `json`: one JSON object a line, for machines. */
  logFormat: 'pretty' | 'json';
  /** Whether the OpenAPI document and its UI are served at /docs. */
  docs: boolean;
}

/** Caps on open connections, streams included, counted from the TCP accept to the close. */
export interface ConnectionsConfig {
  /** Open connections this instance accepts; beyond, `503`. 0 means no cap. */
  max: number;
  /** Open connections from one client address (an IPv6 /64); beyond, `429`. 0 means no cap. */
  perIp: number;
}

export interface AuthConfig {
  /** HS256 secret; undefined means "generate one and keep it in the data dir". */
  jwtSecret: string | undefined;
  /** Static publisher API key; undefined means "generate one and keep it in the data dir". */
  publisherKey: string | undefined;
  /** Expected `aud` claim of every JWT, when set. */
  audience: string | undefined;
  /** Topic patterns every subscriber may read, besides those their token's `topics` claim allows. */
  publicTopics: string[];
}

export interface CorsConfig {
  /** Browser origins allowed cross-origin: empty for none, `['*']` for any (without credentials), or a list (with them). */
  origins: string[];
}

export interface DemoConfig {
  /**
   * Serves a token for any user to the browser page. On by default only with no secret and no
   * publisher key configured on a loopback host; never with a configured secret.
   */
  enabled: boolean;
}

/** Streams of either transport (SSE and WebSocket): their cadence, catch-up and what one client may hold. */
export interface StreamConfig {
  /** Heartbeat comments on SSE streams, pings on WebSockets. */
  heartbeatMs: number;
  /** The `retry:` hint an SSE stream starts with. */
  retryMs: number;
  /** Most notifications replayed on a resume; beyond, the client is told to reload. */
  catchupLimit: number;
  /** Notifications of every audience kept in memory to answer resumes (stream/recent.ts); 0 for none. */
  replayRing: number;
  maxStreamsPerUser: number;
  /** Topics one stream, or one history query, may name. */
  maxTopics: number;
  /** Bytes a stream may have queued unsent before it is closed as a slow consumer. */
  maxPendingBytes: number;
  /** Under load, how long a stream's writes may be held to leave in one syscall (see stream/cork.ts); 0: one tick only. */
  coalesceMs: number;
  /** Stream opens with a resume point (Last-Event-ID) per user per minute, in bursts of as many; 0 means no limit. */
  resumeRatePerUser: number;
  /** The same per client address. */
  resumeRatePerIp: number;
}

/** What a WebSocket client may send. */
export interface WsConfig {
  /** Largest message; beyond, the socket is closed with 1009. */
  maxMessageBytes: number;
  /** Messages per second (and burst); beyond, the socket is closed with 1008. */
  maxMessagesPerSecond: number;
}

export interface PublishConfig {
  /** Publishes one publisher may make per `rateWindowMs`; 0 means no limit. */
  rateLimit: number;
  rateWindowMs: number;
}

export interface RetentionConfig {
  /** Notifications older than this many days are deleted; 0 keeps them forever. */
  days: number;
  /** Each user keeps at most this many direct notifications; 0 means no cap. */
  perUser: number;
  /** How often the retention job runs. */
  intervalMs: number;
}

export interface StoreConfig {
  /** Where notifications live: a SQLite file path, or a postgres:// URL. */
  location: string;
  sqliteSync: 'full' | 'normal';
}

export interface BusConfig {
  /** How instances fan out: "memory" (one process) or a redis:// URL. */
  location: string;
  /** The Redis pub/sub channel of this deployment's instances. */
  channel: string;
  /** How often a Redis-bus instance checks the store for notifications whose message was lost. */
  resyncMs: number;
}

/** Web Push: VAPID identity, which endpoints subscriptions may name, and the delivery queue's pace. */
export interface PushConfig {
  /** Configured VAPID keys (base64url, as `web-push generate-vapid-keys` prints them); else generated and kept with the secrets. */
  vapidPublicKey: string | undefined;
  vapidPrivateKey: string | undefined;
  /** The contact push services see in the VAPID JWT: a mailto: or https: URL. */
  vapidSubject: string;
  /**
   * Accept `http://` endpoints on loopback hosts (tests, local development). Off, only `https://`
   * endpoints are stored: an endpoint is a URL Herald POSTs to, so a plain-HTTP one would let a
   * subscriber point Herald at any service inside its network.
   */
  allowLoopbackEndpoints: boolean;
  /** Sends of one push before it is given up. */
  maxAttempts: number;
  /** The first retry's delay; each later one doubles (a Retry-After from the push service wins when longer). */
  retryBaseMs: number;
  /** How often the queue is looked at when nothing woke it (a publish on this instance wakes it at once). */
  pollMs: number;
}

/** The operations endpoints (health, readiness, metrics). */
export interface OpsConfig {
  /** When set, GET /metrics needs it as a bearer token. */
  metricsToken: string | undefined;
}

/** What a webhook reports; an endpoint may ask for some of them only. */
export const webhookEvents = ['notification.delivered', 'notification.read', 'notification.deleted'] as const;
export type WebhookEvent = (typeof webhookEvents)[number];

export interface WebhookEndpoint {
  url: string;
  /** The events sent to it; null for all. */
  events: WebhookEvent[] | null;
}

/** Outgoing webhooks and the delivered receipts they report. */
export interface WebhooksConfig {
  endpoints: WebhookEndpoint[];
  /** Standard Webhooks signing secret (`whsec_` + base64); undefined means "generate one and keep it in the data dir". */
  secret: string | undefined;
  /** Attempts of one webhook before it is dead (kept, listed by the admin endpoint, retried by hand). */
  maxAttempts: number;
  /** The first retry's delay; each next one doubles, up to an hour, with jitter. */
  retryBaseMs: number;
  /** How long one attempt may take, the answer's head included. */
  timeoutMs: number;
  /** How often the dispatcher looks for due webhooks when it found none. */
  pollMs: number;
  /** Delivered receipts are buffered this long and written in one transaction. */
  receiptFlushMs: number;
}

/** The Pusher protocol surface (WebSocket at /app/:key, HTTP API at /apps/:appId). */
export interface PusherConfig {
  /** HERALD_PUSHER_APPS; none turns the surface off (its routes answer 404). */
  apps: PusherApp[];
  /** HERALD_PUSHER_USER_CHANNEL: the channel of a user's notifications, `{id}` standing for the user id. */
  userChannel: string;
  /** Seconds of silence after which a client pings (told to it in `pusher:connection_established`). */
  activityTimeoutSeconds: number;
}

/** Every setting, grouped by what consumes it: each group is handed as it is to its plugin or factory. */
export interface Config {
  /** Where the SQLite file (by default) and generated secrets live. */
  dataDir: string;
  server: ServerConfig;
  connections: ConnectionsConfig;
  auth: AuthConfig;
  cors: CorsConfig;
  demo: DemoConfig;
  stream: StreamConfig;
  ws: WsConfig;
  publish: PublishConfig;
  retention: RetentionConfig;
  store: StoreConfig;
  bus: BusConfig;
  push: PushConfig;
  ops: OpsConfig;
  webhooks: WebhooksConfig;
  pusher: PusherConfig;
}

export class ConfigError extends Error {}

/** Whether HERALD_STORE names a PostgreSQL database rather than a SQLite file. */
export const isPostgresUrl = (store: string): boolean => /^postgres(ql)?:\/\//.test(store);

/** A store or bus setting fit to print or log: the password of a URL is masked. */
export function printable(setting: string): string {
  try {
    const url = new URL(setting);
    if (url.password === '') return setting;
    url.password = '***';
    return url.toString();
  } catch {
    return setting; // a file path, not a URL
  }
}

const loopbackAddresses = new BlockList();
loopbackAddresses.addSubnet('127.0.0.0', 8, 'ipv4');
loopbackAddresses.addAddress('::1', 'ipv6');

/**
 * Whether listening on `host` reaches this machine only: `localhost`, 127.0.0.0/8, `::1` (IPv4-mapped
 * `::ffff:127.x` too). A name like `127.example.com` is not: it may resolve anywhere.
 */
export function isLoopback(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const version = isIP(host);
  return version !== 0 && loopbackAddresses.check(host, version === 4 ? 'ipv4' : 'ipv6');
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function bool(env: Env, name: string, def: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

function str(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw === '' ? undefined : raw;
}

/**
 * HERALD_PUSHER_APPS: `id:key:secret` entries, comma-separated, each optionally followed by
 * `:client-events` to let its sockets send client events. Ids and keys are unique; a secret is never
 * echoed in an error.
 */
function pusherApps(env: Env): PusherApp[] {
  const entries = (str(env, 'HERALD_PUSHER_APPS') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const apps = entries.map((entry, i) => {
    const [id = '', key = '', secret = '', ...flags] = entry.split(':');
    const where = `HERALD_PUSHER_APPS entry ${i + 1}`;
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new ConfigError(`${where}: the app id must be 1 to 64 letters, digits, _ or -`);
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(key)) throw new ConfigError(`${where}: the key must be 1 to 128 letters, digits, _ or -`);
    if (secret.length < 16) throw new ConfigError(`${where}: the secret must be at least 16 characters`);
    const unknown = flags.find((f) => f !== 'client-events');
    if (unknown !== undefined) throw new ConfigError(`${where}: unknown flag "${unknown}" (the one flag is client-events)`);
    return { id, key, secret, clientEvents: flags.includes('client-events') };
  });
  for (const field of ['id', 'key'] as const) {
    const seen = new Set<string>();
    for (const app of apps) {
      if (seen.has(app[field])) throw new ConfigError(`HERALD_PUSHER_APPS: two apps have the ${field} "${app[field]}"`);
      seen.add(app[field]);
    }
  }
  return apps;
}

function userChannel(env: Env): string {
  const pattern = str(env, 'HERALD_PUSHER_USER_CHANNEL') ?? 'private-App.Models.User.{id}';
  const parts = pattern.split('{id}');
  // A user's notifications are theirs: only a channel that needs the app's signature may carry them.
  if (parts.length !== 2 || !pattern.startsWith('private-') || !isChannelName(parts.join('x'))) {
    throw new ConfigError(`HERALD_PUSHER_USER_CHANNEL must be a private- channel name with {id} once in it, got "${pattern}"`);
  }
  return pattern;
}

function topicPatterns(env: Env, name: string): string[] {
  const list = parsePatternList(str(env, name) ?? '');
  if ('problem' in list) throw new ConfigError(`${name}: ${list.problem}`);
  return list.patterns;
}

/**
 * HERALD_CORS_ORIGINS: none by default, in every mode (Herald's own pages are same-origin). Each entry
 * must be an exact origin, since one with a path or a trailing slash would never match a browser's.
 */
function origins(env: Env): string[] {
  const list = (str(env, 'HERALD_CORS_ORIGINS') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (list.includes('*')) {
    // Listed origins get credentials and `*` gets none: one list cannot say both.
    if (list.length > 1) throw new ConfigError('HERALD_CORS_ORIGINS is either * (any origin, without credentials) or a list of origins, not both');
    return list;
  }
  const bad = list.find((origin) => !URL.canParse(origin) || new URL(origin).origin !== origin);
  if (bad !== undefined) {
    throw new ConfigError(`HERALD_CORS_ORIGINS entries must be origins like https://app.example.com (no path or trailing slash), got "${bad}"`);
  }
  return list;
}

/**
 * Demo mode hands a token for any user to whoever asks, so by default it is on only for an instance
 * nothing was configured for that listens on this machine alone. Asked for on a network address, it
 * needs HERALD_DEMO_PUBLIC=true too, so exposing it is never an accident.
 */
function demoMode(env: Env, host: string, nothingConfigured: boolean): boolean {
  const loopback = isLoopback(host);
  const demo = bool(env, 'HERALD_DEMO', nothingConfigured && loopback);
  if (demo && !loopback && !bool(env, 'HERALD_DEMO_PUBLIC', false)) {
    throw new ConfigError(
      `HERALD_DEMO=true on HOST=${host} (not a loopback address) would let anyone who reaches this port act as any user; set HERALD_DEMO_PUBLIC=true too if that is what you mean`,
    );
  }
  return demo;
}

/** One endpoint of HERALD_WEBHOOKS: an https URL (or http with HERALD_WEBHOOK_ALLOW_HTTP=true), and its events. */
function webhookEndpoint(entry: unknown, allowHttp: boolean): WebhookEndpoint {
  const { url, events, ...rest } = (typeof entry === 'string' ? { url: entry } : (entry ?? {})) as { url?: unknown; events?: unknown };
  const extra = Object.keys(rest);
  if (typeof entry !== 'string' && (typeof entry !== 'object' || Array.isArray(entry) || extra.length > 0)) {
    throw new ConfigError(`HERALD_WEBHOOKS entries are URLs or { "url": ..., "events": [...] }, got ${JSON.stringify(entry)}`);
  }
  if (typeof url !== 'string' || !URL.canParse(url)) throw new ConfigError(`HERALD_WEBHOOKS: not a URL: ${JSON.stringify(url)}`);
  const protocol = new URL(url).protocol;
  // Payloads name users and what they did: in clear text anyone on the path reads them, and may replay
  // a captured request (signed, so accepted) within the receiver's timestamp tolerance.
  if (protocol !== 'https:' && !(protocol === 'http:' && allowHttp)) {
    throw new ConfigError(`HERALD_WEBHOOKS: ${printable(url)} is not https (set HERALD_WEBHOOK_ALLOW_HTTP=true for a local http receiver)`);
  }
  if (events === undefined) return { url, events: null };
  const known: readonly unknown[] = webhookEvents;
  if (!Array.isArray(events) || events.length === 0 || !events.every((e) => known.includes(e))) {
    throw new ConfigError(`HERALD_WEBHOOKS: "events" of ${printable(url)} must be a non-empty list of ${webhookEvents.join(', ')}`);
  }
  return { url, events: [...new Set(events as WebhookEvent[])] };
}

/** HERALD_WEBHOOKS: a comma-separated list of URLs, or a JSON list of URLs and { "url", "events" } objects. */
function webhookEndpoints(env: Env): WebhookEndpoint[] {
  const raw = (str(env, 'HERALD_WEBHOOKS') ?? '').trim();
  const allowHttp = bool(env, 'HERALD_WEBHOOK_ALLOW_HTTP', false);
  let entries: unknown[];
  if (raw.startsWith('[')) {
    try {
      entries = JSON.parse(raw) as unknown[];
    } catch (err) {
      throw new ConfigError(`HERALD_WEBHOOKS is not valid JSON: ${(err as Error).message}`);
    }
    if (!Array.isArray(entries)) throw new ConfigError('HERALD_WEBHOOKS must be a JSON list');
  } else {
    entries = raw.split(',').map((s) => s.trim()).filter(Boolean);
  }
  const endpoints = entries.map((e) => webhookEndpoint(e, allowHttp));
  const urls = endpoints.map((e) => e.url);
  const twice = urls.find((u, i) => urls.indexOf(u) !== i);
  if (twice !== undefined) throw new ConfigError(`HERALD_WEBHOOKS lists ${printable(twice)} twice`);
  return endpoints;
}

/** The Standard Webhooks secret format: `whsec_` and the key in base64, 24 to 64 bytes. */
export function isWebhookSecret(secret: string): boolean {
  const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(secret);
  const bytes = m ? Buffer.from(m[1]!, 'base64').length : 0;
  return bytes >= 24 && bytes <= 64;
}

export function loadConfig(env: Env = process.env): Config {
  const dataDir = str(env, 'HERALD_DATA_DIR') ?? './data';
  const jwtSecret = str(env, 'HERALD_JWT_SECRET');
  if (jwtSecret !== undefined && jwtSecret.length < 32) {
    throw new ConfigError('HERALD_JWT_SECRET must be at least 32 characters');
  }
  const publisherKey = str(env, 'HERALD_PUBLISHER_KEY');
  if (publisherKey !== undefined && publisherKey.length < 16) {
    throw new ConfigError('HERALD_PUBLISHER_KEY must be at least 16 characters');
  }
  const metricsToken = str(env, 'HERALD_METRICS_TOKEN');
  if (metricsToken !== undefined && metricsToken.length < 16) {
    throw new ConfigError('HERALD_METRICS_TOKEN must be at least 16 characters');
  }
  const webhookSecret = str(env, 'HERALD_WEBHOOK_SECRET');
  if (webhookSecret !== undefined && !isWebhookSecret(webhookSecret)) {
    throw new ConfigError('HERALD_WEBHOOK_SECRET must be whsec_ followed by 24 to 64 bytes in base64');
  }
  const production = env.NODE_ENV === 'production';
  const corsOrigins = origins(env);
  const store = str(env, 'HERALD_STORE') ?? `${dataDir}/herald.db`;
  const bus = str(env, 'HERALD_BUS') ?? 'memory';
  if (bus !== 'memory' && !/^rediss?:\/\//.test(bus)) throw new ConfigError(`HERALD_BUS must be "memory" or a redis:// URL, got "${bus}"`);
  // Instances on a Redis bus repair gaps from the store by id: they must all share one store.
  if (bus !== 'memory' && !isPostgresUrl(store)) {
    throw new ConfigError('HERALD_BUS=redis://... needs HERALD_STORE=postgres://... (every instance must share one store)');
  }
  const sync = (str(env, 'HERALD_SQLITE_SYNC') ?? 'full').toLowerCase();
  if (sync !== 'full' && sync !== 'normal') throw new ConfigError(`HERALD_SQLITE_SYNC must be "full" or "normal", got "${sync}"`);
  // A person at a terminal reads lines; a pipe or a log collector parses JSON.
  const logFormat = (str(env, 'HERALD_LOG_FORMAT') ?? (process.stdout.isTTY ? 'pretty' : 'json')).toLowerCase();
  if (logFormat !== 'pretty' && logFormat !== 'json') throw new ConfigError(`HERALD_LOG_FORMAT must be "pretty" or "json", got "${logFormat}"`);
  const host = str(env, 'HOST') ?? '127.0.0.1';
  const demo = demoMode(env, host, jwtSecret === undefined && publisherKey === undefined && !production);
  if (demo && jwtSecret !== undefined) throw new ConfigError('HERALD_DEMO cannot be on when HERALD_JWT_SECRET is set');
  return {
    dataDir,
    server: {
      host,
      port: int(env, 'PORT', 3000, 0, 65535),
      bodyLimit: int(env, 'HERALD_BODY_LIMIT', 64 * 1024, 1024, 16 * 1024 * 1024),
      requestTimeoutMs: int(env, 'HERALD_REQUEST_TIMEOUT_MS', 30_000, 1000, 3_600_000),
      shutdownGraceMs: int(env, 'HERALD_SHUTDOWN_GRACE_MS', 10_000, 0, 600_000),
      backlog: int(env, 'HERALD_LISTEN_BACKLOG', 4096, 1, 1_000_000),
      logLevel: str(env, 'LOG_LEVEL') ?? 'info',
      logFormat,
      docs: bool(env, 'HERALD_DOCS', true),
    },
    connections: {
      max: int(env, 'HERALD_MAX_CONNECTIONS', 50_000, 0, 10_000_000),
      perIp: int(env, 'HERALD_MAX_CONNECTIONS_PER_IP', 1000, 0, 10_000_000),
    },
    auth: {
      jwtSecret,
      publisherKey,
      audience: str(env, 'HERALD_JWT_AUDIENCE'),
      publicTopics: topicPatterns(env, 'HERALD_PUBLIC_TOPICS'),
    },
    cors: { origins: corsOrigins },
    demo: { enabled: demo },
    stream: {
      heartbeatMs: int(env, 'HERALD_HEARTBEAT_MS', 15_000, 100, 3_600_000),
      retryMs: int(env, 'HERALD_RETRY_MS', 2_000, 0, 3_600_000),
      catchupLimit: int(env, 'HERALD_CATCHUP_LIMIT', 10_000, 1, 1_000_000),
      replayRing: int(env, 'HERALD_REPLAY_RING', 10_000, 0, 1_000_000),
      maxStreamsPerUser: int(env, 'HERALD_MAX_STREAMS_PER_USER', 20, 1, 100_000),
      maxTopics: int(env, 'HERALD_MAX_TOPICS_PER_STREAM', 50, 1, 10_000),
      maxPendingBytes: int(env, 'HERALD_MAX_PENDING_BYTES', 1024 * 1024, 1024, 1024 * 1024 * 1024),
      coalesceMs: int(env, 'HERALD_WRITE_COALESCE_MS', 4, 0, 50),
      resumeRatePerUser: int(env, 'HERALD_RESUME_RATE_PER_USER', 60, 0, 1_000_000),
      resumeRatePerIp: int(env, 'HERALD_RESUME_RATE_PER_IP', 1000, 0, 1_000_000),
    },
    ws: {
      maxMessageBytes: int(env, 'HERALD_WS_MAX_MESSAGE_BYTES', 4096, 128, 1024 * 1024),
      maxMessagesPerSecond: int(env, 'HERALD_WS_MAX_MESSAGES_PER_SECOND', 50, 1, 100_000),
    },
    publish: {
      rateLimit: int(env, 'HERALD_PUBLISH_RATE_LIMIT', 0, 0, 10_000_000),
      rateWindowMs: int(env, 'HERALD_PUBLISH_RATE_WINDOW_MS', 1_000, 100, 86_400_000),
    },
    retention: {
      days: int(env, 'HERALD_RETENTION_DAYS', 90, 0, 36_500),
      perUser: int(env, 'HERALD_RETENTION_PER_USER', 10_000, 0, 100_000_000),
      intervalMs: int(env, 'HERALD_RETENTION_INTERVAL_MS', 3_600_000, 100, 7 * 86_400_000),
    },
    store: { location: store, sqliteSync: sync },
    bus: {
      location: bus,
      // Redis pub/sub channels are server-wide (the database number in the URL does not separate them):
      // deployments sharing one Redis each need their own channel.
      channel: str(env, 'HERALD_BUS_CHANNEL') ?? 'herald:bus',
      resyncMs: int(env, 'HERALD_BUS_RESYNC_MS', 1000, 100, 3_600_000),
    },
    push: {
      ...vapidKeys(env),
      vapidSubject: vapidSubject(env),
      allowLoopbackEndpoints: bool(env, 'HERALD_PUSH_ALLOW_LOOPBACK_HTTP', false),
      maxAttempts: int(env, 'HERALD_PUSH_MAX_ATTEMPTS', 8, 1, 100),
      retryBaseMs: int(env, 'HERALD_PUSH_RETRY_BASE_MS', 5_000, 10, 3_600_000),
      pollMs: int(env, 'HERALD_PUSH_POLL_MS', 1_000, 10, 3_600_000),
    },
    ops: { metricsToken },
    webhooks: {
      endpoints: webhookEndpoints(env),
      secret: webhookSecret,
      maxAttempts: int(env, 'HERALD_WEBHOOK_MAX_ATTEMPTS', 8, 1, 100),
      retryBaseMs: int(env, 'HERALD_WEBHOOK_RETRY_BASE_MS', 5_000, 10, 3_600_000),
      timeoutMs: int(env, 'HERALD_WEBHOOK_TIMEOUT_MS', 10_000, 100, 300_000),
      pollMs: int(env, 'HERALD_WEBHOOK_POLL_MS', 1_000, 10, 60_000),
      receiptFlushMs: int(env, 'HERALD_RECEIPT_FLUSH_MS', 200, 1, 60_000),
    },
    pusher: {
      apps: pusherApps(env),
      userChannel: userChannel(env),
      activityTimeoutSeconds: int(env, 'HERALD_PUSHER_ACTIVITY_TIMEOUT', 120, 1, 3600),
    },
  };
}

function vapidKeys(env: Env): Pick<PushConfig, 'vapidPublicKey' | 'vapidPrivateKey'> {
  const vapidPublicKey = str(env, 'HERALD_VAPID_PUBLIC_KEY');
  const vapidPrivateKey = str(env, 'HERALD_VAPID_PRIVATE_KEY');
  if ((vapidPublicKey === undefined) !== (vapidPrivateKey === undefined)) {
    throw new ConfigError('HERALD_VAPID_PUBLIC_KEY and HERALD_VAPID_PRIVATE_KEY are set together or not at all');
  }
  return { vapidPublicKey, vapidPrivateKey };
}

function vapidSubject(env: Env): string {
  const subject = str(env, 'HERALD_VAPID_SUBJECT') ?? 'mailto:herald@localhost';
  if (!/^(mailto:|https:\/\/)/.test(subject)) throw new ConfigError(`HERALD_VAPID_SUBJECT must be a mailto: or https:// URL, got "${subject}"`);
  return subject;
}
