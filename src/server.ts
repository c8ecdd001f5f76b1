import { resolve } from 'node:path';
import { buildApp } from './app.js';
import { createBus } from './bus/index.js';
import { ConfigError, isLoopback, loadConfig, printable, type Config } from './config.js';
import { demoUser } from './routes/demo.js';
import { loadSecrets, secretsFile, type Secrets } from './secrets.js';
import { createStore } from './store/index.js';

/**
 * The first thing a newcomer reads: how to try it with curl, right now. Credentials are printed only
 * in demo mode (`demoToken` given), the local try-out; otherwise the banner says where they are.
 */
function banner(config: Config, secrets: Secrets, base: string, demoToken: string | undefined): string {
  const file = resolve(secretsFile(config));
  const demo = demoToken !== undefined;
  const key = secrets.generated.publisherKey ? '$KEY' : '$HERALD_PUBLISHER_KEY';
  return [
    '',
    `Herald is listening on ${base}  (store: ${printable(config.store.location)}, bus: ${printable(config.bus.location)})`,
    ...(demo ? demoLines(config, secrets, file, base, demoToken) : credentialLines(secrets, file)),
    'Try it:',
    `  curl -N -H "Authorization: Bearer $TOKEN" ${base}/events`,
    `  curl -X POST ${base}/notifications -H "Authorization: Bearer ${key}" \\`,
    `       -H 'content-type: application/json' -d '{"user":"${demoUser}","title":"Hello"}'`,
    '',
    '',
  ].join('\n');
}

function demoLines(config: Config, secrets: Secrets, file: string, base: string, token: string): string[] {
  return [
    `Demo inbox: open ${base}/ in a browser (demo mode: the page signs in as any user it names)`,
    ...(isLoopback(config.server.host)
      ? []
      : [`Warning: demo mode on ${config.server.host} lets anyone who reaches this port act as any user; set HERALD_DEMO=false to turn it off`]),
    ...(secrets.generated.publisherKey ? [`Publisher key (kept in ${file}) and a token for user "${demoUser}", valid 24 h (more: npm run token -- <user>);`] : [`A token for user "${demoUser}", valid 24 h (more: npm run token -- <user>);`]),
    ...(secrets.generated.webhookSecret ? [`Webhook signing secret (kept in ${file}): ${secrets.webhookSecret}`] : []),
    'paste these lines into your shell:',
    ...(secrets.generated.publisherKey ? [`  KEY=${secrets.publisherKey}`] : []),
    `  TOKEN=${token}`,
  ];
}

/** Outside demo mode: where generated credentials are kept, never what they are. */
function credentialLines(secrets: Secrets, file: string): string[] {
  return [
    ...(secrets.generated.publisherKey
      ? [
          `Publisher key: generated and kept in ${file} (mode 0600: readable by this user only); to use it:`,
          `  KEY=$(node -p 'require(${JSON.stringify(file)}).publisherKey')`,
        ]
      : []),
    ...(secrets.generated.webhookSecret ? [`Webhook signing secret: generated and kept in ${file}, as webhookSecret`] : []),
    secrets.generated.jwtSecret
      ? `Subscriber tokens: no HERALD_JWT_SECRET is set, so one was generated and kept in ${file}; a token to try it:`
      : 'Subscriber tokens: your app signs them with HERALD_JWT_SECRET; a token to try it:',
    `  TOKEN=$(npm run -s token -- ${demoUser})   # in this instance's environment`,
  ];
}

async function main(): Promise<void> {
  const config = loadConfig();
  const secrets = loadSecrets(config);
  const store = await createStore(config.store);
  const bus = await createBus(config.bus, store);
  const app = await buildApp({ config, secrets, store, bus });
  await app.listen({ port: config.server.port, host: config.server.host, backlog: config.server.backlog });

  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.server.port;
  const { host } = config.server;
  const base = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  process.stdout.write(banner(config, secrets, base, config.demo.enabled ? app.jwt.sign({ sub: demoUser }, { expiresIn: '24h' }) : undefined));

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'shutting down');
    // A client that never finishes its request must not hold the process up: past the grace period its
    // connection is cut and the stop goes on, so the store is still closed cleanly and the exit is 0.
    const grace = setTimeout(() => {
      app.log.warn({ graceMs: config.server.shutdownGraceMs }, 'shutdown grace period over; closing the remaining connections');
      app.server.closeAllConnections();
    }, config.server.shutdownGraceMs);
    // Should closing itself hang (a stuck store or bus), exit anyway rather than never.
    setTimeout(() => {
      app.log.error('shutdown did not finish after the grace period; exiting');
      process.exit(1);
    }, config.server.shutdownGraceMs + 5_000).unref();
    // Stop accepting, let in-flight publishes finish, end streams; then close the bus and the store.
    await app.close();
    clearTimeout(grace);
    await bus.close();
    await store.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`herald: configuration error: ${err.message}\n`);
  } else {
    process.stderr.write(`herald: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  process.exit(1);
});
