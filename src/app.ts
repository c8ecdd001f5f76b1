import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance } from 'fastify';
import { authPlugin } from './http/auth.js';
import { corsOptions } from './http/cors.js';
import type { Bus } from './bus/bus.js';
import type { Config } from './config.js';
import { limitConnections } from './http/connections.js';
import { drainUnreadBody } from './http/drain.js';
import { errors } from './errors.js';
import { errorServerOptions, errorsPlugin } from './http/errors.js';
import { Flusher } from './stream/cork.js';
import { Hub } from './stream/hub.js';
import { jsonBodyPlugin } from './http/json-body.js';
import { loggingOptions } from './http/logging.js';
import { Metrics } from './metrics.js';
import { Inbox } from './domain/inbox.js';
import { PreferenceBook } from './domain/preferences.js';
import { Publisher } from './domain/publisher.js';
import { retentionPlugin } from './domain/retention.js';
import { demoRoutes } from './routes/demo.js';
import { eventRoutes } from './routes/events.js';
import { historyRoutes } from './routes/history.js';
import { opsRoutes } from './routes/ops.js';
import { ResumeLimiter } from './stream/limits.js';
import { RecentRing } from './stream/recent.js';
import { pageRoutes } from './routes/page.js';
import { preferenceRoutes } from './routes/preferences.js';
import { publishRoutes } from './routes/publish.js';
import { pusherRoutes } from './routes/pusher.js';
import { pushRoutes } from './routes/push.js';
import { LocalPresence, RedisPresence } from './push/presence.js';
import { PushWorker } from './push/worker.js';
import { webhookRoutes } from './routes/webhooks.js';
import { websocketPlugin, wsRoutes } from './routes/ws.js';
import { Webhooks } from './webhooks/index.js';
import type { Secrets } from './secrets.js';
import type { Store } from './store/store.js';
import { validatorCompiler } from './http/validation.js';

export interface AppDeps {
  config: Config;
  /** The webhook secret as resolved (configured or generated); without it, HERALD_WEBHOOK_SECRET is used. */
  secrets: Pick<Secrets, 'jwtSecret' | 'publisherKey' | 'vapid'> & Partial<Pick<Secrets, 'webhookSecret'>>;
  store: Store;
  bus: Bus;
}

declare module 'fastify' {
  interface FastifyInstance {
    hub: Hub;
    metrics: Metrics;
  }
}

/** Builds the Fastify instance with every route; the caller owns the store and bus and closes them. */
export async function buildApp({ config, secrets, store, bus }: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    ...loggingOptions(config.server.logLevel, config.server.logFormat),
    ...errorServerOptions,
    bodyLimit: config.server.bodyLimit,
    // Counted until the whole request has arrived: a client trickling its head or body is cut (408),
    // while a stream, whose GET is complete once sent, is not affected however long it stays open.
    requestTimeout: config.server.requestTimeoutMs,
    http: {
      // Given here too, as node:http checks at creation that the head's timeout is within the request's.
      requestTimeout: config.server.requestTimeoutMs,
      headersTimeout: config.server.requestTimeoutMs,
      // node:http looks for expired requests only this often (30 s by default): a tenth of the
      // timeout, so a cut comes within about the timeout.
      connectionsCheckingInterval: Math.min(30_000, Math.ceil(config.server.requestTimeoutMs / 10)),
    },
  });
  limitConnections(app.server, config.connections);
  app.setValidatorCompiler(validatorCompiler);
  bus.useLogger?.(app.log.child({ component: 'bus' }));
  // The gauge reads the hub only when scraped, after both exist.
  const metrics: Metrics = new Metrics((): number => hub.size);
  const webhookSecret = secrets.webhookSecret ?? config.webhooks.secret;
  const webhooks = new Webhooks(store, bus, config.webhooks, webhookSecret, metrics, app.log.child({ component: 'webhooks' }));
  const hub: Hub = new Hub(bus, config.stream.heartbeatMs, metrics, { store, log: app.log.child({ component: 'hub' }) }, webhooks.receipts, {
    load: (user) => store.preferences(user),
    onError: (err, user) => app.log.error({ err, user }, 'reading preferences failed: live delivery to this user is unfiltered'),
  });
  // One for both transports: whether the loop is busy is this process's, whatever the stream.
  const flusher = new Flusher(config.stream.coalesceMs);
  // Read once the hub listens to the bus: every notification is at or below this, or routed through it.
  hub.startAfter(await store.lastId());
  const replay = new RecentRing(store, bus, config.stream.replayRing, metrics);
  await replay.seed();
  app.decorate('hub', hub);
  app.decorate('metrics', metrics);
  // The id in every log line of a request, handed back so a caller can quote it in a report.
  app.addHook('onRequest', async (request, reply) => void reply.header('x-request-id', request.id));
  // preClose, not onClose: open streams must end before the server can finish closing.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    hub.close();
    flusher.close();
    replay.close();
  });
  app.addHook('onReady', async () => webhooks.start());
  app.addHook('onClose', async () => webhooks.close());
  // A request that arrives once the stop has begun (on a kept-alive connection) is refused at once.
  app.addHook('onRequest', async () => {
    if (closing) throw errors.shuttingDown();
  });
  // Requests already in flight when the stop begins are answered, but their keep-alive connections
  // must not then hold the server open: each such answer closes its connection.
  // An answer before the body was read (a 401 or 413) lets the client finish sending: see drain.ts.
  app.addHook('onSend', async (request, reply) => {
    if (closing) reply.header('connection', 'close');
    else if (!request.raw.complete) drainUnreadBody(request.raw, reply);
  });

  await app.register(errorsPlugin);
  await app.register(jsonBodyPlugin);
  await app.register(cors, corsOptions(config.cors.origins));
  if (config.server.docs) {
    // The OpenAPI document is generated from the route schemas, so it cannot drift from what is enforced.
    await app.register(swagger, {
      openapi: {
        info: { title: 'Herald', description: 'Real-time notifications over SSE and WebSocket', version: '0.1.0' },
        components: {
          securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT or publisher key' } },
        },
        security: [{ bearer: [] }],
      },
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
  }
  // The secrets as resolved, configured or generated, in place of the configured ones.
  await app.register(authPlugin, { ...config.auth, jwtSecret: secrets.jwtSecret, publisherKey: secrets.publisherKey });

  await app.register(opsRoutes, { ...config.ops, store, bus, metrics });
  // Limits are opted into per route (the publish route); nothing else is rate limited.
  await app.register(rateLimit, { global: false });
  const publisher = new Publisher(store, bus, metrics, app.log);
  await app.register(publishRoutes, { ...config.publish, publisher, metrics });
  const inbox = new Inbox(store, bus, app.log, webhooks.userEventOutbox);
  await app.register(historyRoutes, { store, inbox, maxTopics: config.stream.maxTopics });
  await app.register(preferenceRoutes, { preferences: new PreferenceBook(store, bus, app.log) });
  // One resume limiter for both transports: switching between them does not double a client's rate.
  const resumes = new ResumeLimiter(config.stream.resumeRatePerUser, config.stream.resumeRatePerIp);
  const stream = { ...config.stream, replay, hub, metrics, resumes, flusher };
  await app.register(eventRoutes, stream);
  await websocketPlugin(app, config.ws.maxMessageBytes);
  await app.register(wsRoutes, { ...stream, ...config.ws, inbox, corsOrigins: config.cors.origins });
  await app.register(webhookRoutes, { store, wake: () => webhooks.wake() });
  // Mounted only with an app configured: without, /app/* and /apps/* are plain 404s.
  if (config.pusher.apps.length > 0) await app.register(pusherRoutes, { ...stream, ...config.ws, ...config.pusher, bus, publisher });
  await app.register(pageRoutes);
  // Demo routes exist only in demo mode: with it off, /demo/* is a plain 404.
  if (config.demo.enabled) await app.register(demoRoutes, { maxTopics: config.stream.maxTopics });
  await app.register(retentionPlugin, { ...config.retention, store });
  await app.register(pushRoutes, { store, vapidPublicKey: secrets.vapid.publicKey, config: config.push });
  const presence =
    config.bus.location === 'memory' ? new LocalPresence(hub) : new RedisPresence(config.bus.location, hub, config.bus.channel);
  const pushWorker = new PushWorker({ store, bus, presence, vapid: secrets.vapid, config: config.push, log: app.log.child({ component: 'push' }) });
  // onClose runs after preClose has ended the streams, and before the caller closes the store.
  app.addHook('onClose', async () => {
    await pushWorker.stop();
    await presence.close();
  });
  return app;
}
