import { buildApp } from './app.js';
import { createBus } from './bus/index.js';
import { ConfigError, loadConfig, printable } from './config.js';
import { loadSecrets } from './secrets.js';
import { createStore } from './store/index.js';

const loopback = (host: string) => host === 'localhost' || host === '::1' || host.startsWith('127.');

async function main(): Promise<void> {
  const config = loadConfig();
  const secrets = loadSecrets(config);
  const store = await createStore(config);
  const bus = await createBus(config, store);
  const app = await buildApp({ config, secrets, store, bus });
  await app.listen({ port: config.port, host: config.host });

  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const base = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  const token = app.jwt.sign({ sub: 'alice' }, { expiresIn: '24h' });
  // The first thing a newcomer reads: how to try it with curl, right now.
  process.stdout.write(
    [
      '',
      `Herald is listening on ${base}  (store: ${printable(config.store)}, bus: ${printable(config.bus)})`,
      config.demo ? `Demo inbox: open ${base}/ in a browser (demo mode: the page signs in as any user it names)` : '',
      config.demo && !loopback(config.host)
        ? `Warning: demo mode on ${config.host} lets anyone who reaches this port act as any user; set HERALD_JWT_SECRET or HERALD_DEMO=false`
        : '',
      secrets.generated.publisherKey ? `Publisher key (kept in ${config.dataDir}/secrets.json): ${secrets.publisherKey}` : '',
      `A token for user "alice", valid 24 h (more: npm run token -- <user>):`,
      `  TOKEN=${token}`,
      'Try it:',
      `  curl -N -H "Authorization: Bearer $TOKEN" ${base}/events`,
      `  curl -X POST ${base}/notifications -H "Authorization: Bearer ${secrets.generated.publisherKey ? secrets.publisherKey : '$HERALD_PUBLISHER_KEY'}" \\`,
      `       -H 'content-type: application/json' -d '{"user":"alice","title":"Hello"}'`,
      '',
    ]
      .filter((l, i, all) => l !== '' || i === 0 || i === all.length - 1)
      .join('\n') + '\n',
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'shutting down');
    // A client that never finishes its request must not hold the process up: past the grace period its
    // connection is cut and the stop goes on, so the store is still closed cleanly and the exit is 0.
    const grace = setTimeout(() => {
      app.log.warn({ graceMs: config.shutdownGraceMs }, 'shutdown grace period over; closing the remaining connections');
      app.server.closeAllConnections();
    }, config.shutdownGraceMs);
    // Should closing itself hang (a stuck store or bus), exit anyway rather than never.
    setTimeout(() => {
      app.log.error('shutdown did not finish after the grace period; exiting');
      process.exit(1);
    }, config.shutdownGraceMs + 5_000).unref();
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
