// The configuration: every environment variable is carried to the group of settings its consumer is
// handed (config.stream to the stream transports, config.retention to the retention job...), every
// setting comes from one, and every one is documented in the README's Configuration table.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { projectFile } from '../../src/paths.js';

const postgres = 'postgres://herald:secret@db.internal:5432/herald';

/** One variable (with any it needs to be accepted), the setting it lands in, and the value it gets. */
interface Case {
  variable: string;
  env: Record<string, string>;
  path: string;
  value: unknown;
}

const c = (variable: string, value: string, path: string, expected: unknown, needs: Record<string, string> = {}): Case => ({
  variable,
  env: { ...needs, [variable]: value },
  path,
  value: expected,
});

const cases: Case[] = [
  c('HERALD_DATA_DIR', '/srv/herald', 'dataDir', '/srv/herald'),
  c('HOST', '::1', 'server.host', '::1'),
  c('PORT', '8080', 'server.port', 8080),
  c('HERALD_BODY_LIMIT', '2048', 'server.bodyLimit', 2048),
  c('HERALD_REQUEST_TIMEOUT_MS', '5000', 'server.requestTimeoutMs', 5000),
  c('HERALD_SHUTDOWN_GRACE_MS', '0', 'server.shutdownGraceMs', 0),
  c('HERALD_LISTEN_BACKLOG', '8192', 'server.backlog', 8192),
  c('LOG_LEVEL', 'warn', 'server.logLevel', 'warn'),
  c('HERALD_LOG_FORMAT', 'pretty', 'server.logFormat', 'pretty'),
  c('HERALD_DOCS', 'false', 'server.docs', false),
  c('HERALD_MAX_CONNECTIONS', '10', 'connections.max', 10),
  c('HERALD_MAX_CONNECTIONS_PER_IP', '0', 'connections.perIp', 0),
  c('HERALD_JWT_SECRET', 's'.repeat(40), 'auth.jwtSecret', 's'.repeat(40)),
  c('HERALD_PUBLISHER_KEY', 'k'.repeat(20), 'auth.publisherKey', 'k'.repeat(20)),
  c('HERALD_JWT_AUDIENCE', 'herald', 'auth.audience', 'herald'),
  c('HERALD_PUBLIC_TOPICS', 'status, news:*', 'auth.publicTopics', ['status', 'news:*']),
  c('HERALD_CORS_ORIGINS', 'https://app.example.com', 'cors.origins', ['https://app.example.com']),
  c('HERALD_DEMO', 'true', 'demo.enabled', true, { HERALD_PUBLISHER_KEY: 'k'.repeat(20) }),
  c('HERALD_DEMO_PUBLIC', 'true', 'demo.enabled', true, { HOST: '0.0.0.0', HERALD_DEMO: 'true' }),
  c('HERALD_HEARTBEAT_MS', '500', 'stream.heartbeatMs', 500),
  c('HERALD_RETRY_MS', '100', 'stream.retryMs', 100),
  c('HERALD_CATCHUP_LIMIT', '100', 'stream.catchupLimit', 100),
  c('HERALD_REPLAY_RING', '0', 'stream.replayRing', 0),
  c('HERALD_MAX_STREAMS_PER_USER', '3', 'stream.maxStreamsPerUser', 3),
  c('HERALD_MAX_TOPICS_PER_STREAM', '4', 'stream.maxTopics', 4),
  c('HERALD_MAX_PENDING_BYTES', '4096', 'stream.maxPendingBytes', 4096),
  c('HERALD_WRITE_COALESCE_MS', '0', 'stream.coalesceMs', 0),
  c('HERALD_RESUME_RATE_PER_USER', '5', 'stream.resumeRatePerUser', 5),
  c('HERALD_RESUME_RATE_PER_IP', '7', 'stream.resumeRatePerIp', 7),
  c('HERALD_WS_MAX_MESSAGE_BYTES', '256', 'ws.maxMessageBytes', 256),
  c('HERALD_WS_MAX_MESSAGES_PER_SECOND', '9', 'ws.maxMessagesPerSecond', 9),
  c('HERALD_PUBLISH_RATE_LIMIT', '100', 'publish.rateLimit', 100),
  c('HERALD_PUBLISH_RATE_WINDOW_MS', '60000', 'publish.rateWindowMs', 60_000),
  c('HERALD_RETENTION_DAYS', '0', 'retention.days', 0),
  c('HERALD_RETENTION_PER_USER', '50', 'retention.perUser', 50),
  c('HERALD_RETENTION_INTERVAL_MS', '1000', 'retention.intervalMs', 1000),
  c('HERALD_STORE', postgres, 'store.location', postgres),
  c('HERALD_SQLITE_SYNC', 'normal', 'store.sqliteSync', 'normal'),
  c('HERALD_WEBHOOKS', 'https://app.example.com/hooks', 'webhooks.endpoints', [{ url: 'https://app.example.com/hooks', events: null }]),
  c('HERALD_WEBHOOK_ALLOW_HTTP', 'true', 'webhooks.endpoints', [{ url: 'http://127.0.0.1:8080/hooks', events: null }], {
    HERALD_WEBHOOKS: 'http://127.0.0.1:8080/hooks',
  }),
  c('HERALD_WEBHOOK_SECRET', `whsec_${'A'.repeat(32)}`, 'webhooks.secret', `whsec_${'A'.repeat(32)}`),
  c('HERALD_WEBHOOK_MAX_ATTEMPTS', '3', 'webhooks.maxAttempts', 3),
  c('HERALD_WEBHOOK_RETRY_BASE_MS', '100', 'webhooks.retryBaseMs', 100),
  c('HERALD_WEBHOOK_TIMEOUT_MS', '500', 'webhooks.timeoutMs', 500),
  c('HERALD_WEBHOOK_POLL_MS', '20', 'webhooks.pollMs', 20),
  c('HERALD_RECEIPT_FLUSH_MS', '50', 'webhooks.receiptFlushMs', 50),
  c('HERALD_BUS', 'redis://cache.internal:6379', 'bus.location', 'redis://cache.internal:6379', { HERALD_STORE: postgres }),
  c('HERALD_BUS_CHANNEL', 'staging:bus', 'bus.channel', 'staging:bus'),
  c('HERALD_BUS_RESYNC_MS', '250', 'bus.resyncMs', 250),
  c('HERALD_METRICS_TOKEN', 'm'.repeat(20), 'ops.metricsToken', 'm'.repeat(20)),
  c('HERALD_PUSHER_APPS', '1:k1:s'.padEnd(22, 's') + ':client-events, 2:k2:' + 't'.repeat(16), 'pusher.apps', [
    { id: '1', key: 'k1', secret: 's'.repeat(17), clientEvents: true },
    { id: '2', key: 'k2', secret: 't'.repeat(16), clientEvents: false },
  ]),
  c('HERALD_PUSHER_USER_CHANNEL', 'private-user.{id}', 'pusher.userChannel', 'private-user.{id}'),
  c('HERALD_PUSHER_ACTIVITY_TIMEOUT', '30', 'pusher.activityTimeoutSeconds', 30),
  c('HERALD_VAPID_PUBLIC_KEY', 'pub', 'push.vapidPublicKey', 'pub', { HERALD_VAPID_PRIVATE_KEY: 'priv' }),
  c('HERALD_VAPID_PRIVATE_KEY', 'priv', 'push.vapidPrivateKey', 'priv', { HERALD_VAPID_PUBLIC_KEY: 'pub' }),
  c('HERALD_VAPID_SUBJECT', 'https://example.com/contact', 'push.vapidSubject', 'https://example.com/contact'),
  c('HERALD_PUSH_ALLOW_LOOPBACK_HTTP', 'true', 'push.allowLoopbackEndpoints', true),
  c('HERALD_PUSH_MAX_ATTEMPTS', '3', 'push.maxAttempts', 3),
  c('HERALD_PUSH_RETRY_BASE_MS', '100', 'push.retryBaseMs', 100),
  c('HERALD_PUSH_POLL_MS', '50', 'push.pollMs', 50),
];

/** The setting at a dotted path, e.g. `stream.maxTopics`. */
function at(config: object, path: string): unknown {
  return path.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], config);
}

/** Every setting's dotted path: a group's fields, not the group (a list is one setting). */
function leaves(node: object, prefix = ''): string[] {
  return Object.entries(node).flatMap(([key, value]) =>
    typeof value === 'object' && value !== null && !Array.isArray(value) ? leaves(value, `${prefix}${key}.`) : [`${prefix}${key}`],
  );
}

/** What every case adds to: demo mode off, as a configured secret or key would otherwise turn it. */
const base = { HERALD_DEMO: 'false' };

t.test('each environment variable lands in its consumer’s group, and nowhere else changes', async (t) => {
  for (const { variable, env, path, value } of cases) {
    const without: Record<string, string> = { ...base, ...env };
    delete without[variable];
    const after = loadConfig({ ...base, ...env });
    t.same(at(after, path), value, `${variable} sets ${path}`);
    if (variable === 'HERALD_DEMO_PUBLIC') {
      t.throws(() => loadConfig(without), { message: /set HERALD_DEMO_PUBLIC=true too/ }, 'without it, the start is refused');
      continue;
    }
    if (variable === 'HERALD_WEBHOOK_ALLOW_HTTP') {
      t.throws(() => loadConfig(without), { message: /is not https/ }, 'without it, an http endpoint is refused');
      continue;
    }
    if (variable.startsWith('HERALD_VAPID_') && variable.endsWith('_KEY')) {
      t.throws(() => loadConfig(without), { message: /set together or not at all/ }, 'one VAPID key without the other is refused');
      continue;
    }
    const before = loadConfig(without);
    t.notSame(at(before, path), value, `${variable}: ${path} is something else without it`);
    // Only the variable's own setting moves (the store follows the data dir: its documented default).
    const moved = leaves(after).filter((p) => JSON.stringify(at(after, p)) !== JSON.stringify(at(before, p)));
    t.same(moved, variable === 'HERALD_DATA_DIR' ? ['dataDir', 'store.location'] : [path], `${variable} changes ${path} only`);
  }
  t.equal(loadConfig({}).store.location, './data/herald.db', 'the store is in the data dir by default');
  t.equal(loadConfig({}).demo.enabled, true, 'demo mode is on with nothing configured on a loopback host');
  t.equal(loadConfig({ NODE_ENV: 'production' }).demo.enabled, false, 'NODE_ENV=production: no demo by default');
});

t.test('every setting comes from a variable, and every variable is read in config.ts and documented', async (t) => {
  t.same(leaves(loadConfig({})).sort(), [...new Set(cases.map((k) => k.path))].sort(), 'each setting has its variable');
  const read = new Set(readFileSync(projectFile('src/config.ts'), 'utf8').match(/(?<=')(HERALD_[A-Z_]+|PORT|HOST|LOG_LEVEL)(?=')/g));
  const documented = new Set([...readFileSync(projectFile('README.md'), 'utf8').matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]));
  const tested = new Set(cases.map((k) => k.variable));
  t.same([...read].sort(), [...tested].sort(), 'every variable config.ts reads is tested here');
  t.same([...documented].sort(), [...tested].sort(), "every variable is in the README's Configuration table");
});

t.test('validation is unchanged: a bad value names its variable', async (t) => {
  t.throws(() => loadConfig({ HERALD_MAX_TOPICS_PER_STREAM: '0' }), { message: 'HERALD_MAX_TOPICS_PER_STREAM must be between 1 and 10000, got 0' });
  t.throws(() => loadConfig({ HERALD_RETENTION_DAYS: 'soon' }), { message: 'HERALD_RETENTION_DAYS must be a whole number, got "soon"' });
  t.throws(() => loadConfig({ HERALD_BUS: 'redis://cache:6379' }), { message: /needs HERALD_STORE=postgres/ });
  t.throws(() => loadConfig({ HERALD_SQLITE_SYNC: 'off' }), { message: 'HERALD_SQLITE_SYNC must be "full" or "normal", got "off"' });
});

t.test('HERALD_PUSHER_APPS and HERALD_PUSHER_USER_CHANNEL: a bad entry names what is wrong, never the secret', async (t) => {
  const secret = 'a-secret-0123456789';
  t.throws(() => loadConfig({ HERALD_PUSHER_APPS: `1:k1:short` }), { message: 'HERALD_PUSHER_APPS entry 1: the secret must be at least 16 characters' });
  t.throws(() => loadConfig({ HERALD_PUSHER_APPS: `1:k1:${secret},1:k2:${secret}` }), { message: 'HERALD_PUSHER_APPS: two apps have the id "1"' });
  t.throws(() => loadConfig({ HERALD_PUSHER_APPS: `1:k1:${secret},2:k1:${secret}` }), { message: 'HERALD_PUSHER_APPS: two apps have the key "k1"' });
  t.throws(() => loadConfig({ HERALD_PUSHER_APPS: `1:k1:${secret}:webhooks` }), { message: /entry 1: unknown flag "webhooks"/ });
  t.throws(() => loadConfig({ HERALD_PUSHER_APPS: `a b:k1:${secret}` }), { message: /entry 1: the app id must be/ });
  t.throws(() => loadConfig({ HERALD_PUSHER_USER_CHANNEL: 'user.{id}' }), { message: /must be a private- channel name with \{id\} once/ }, 'a public channel would let anyone read a user');
  t.throws(() => loadConfig({ HERALD_PUSHER_USER_CHANNEL: 'private-user' }), { message: /with \{id\} once/ });
});
