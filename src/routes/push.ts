import type { FastifyInstance } from 'fastify';
import type { PushConfig } from '../config.js';
import { errors } from '../errors.js';
import { errorResponses } from '../schemas.js';
import type { Store } from '../store/store.js';

/** Devices one user may register; a new one beyond this replaces their oldest. */
const maxSubscriptionsPerUser = 10;

/** A browser's `PushSubscription` as `JSON.stringify(subscription)` gives it. */
interface SubscriptionBody {
  endpoint: string;
  expirationTime?: number | null;
  keys: { p256dh: string; auth: string };
}

const base64url = (min: number, max: number) => ({ type: 'string', minLength: min, maxLength: max, pattern: '^[A-Za-z0-9_-]+={0,2}$' }) as const;

const subscriptionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['endpoint', 'keys'],
  properties: {
    endpoint: { type: 'string', minLength: 1, maxLength: 2048 },
    expirationTime: { type: ['number', 'null'] },
    // A P-256 public key (65 bytes) and a 16-byte secret, base64url: about 87 and 22 characters.
    keys: { type: 'object', additionalProperties: false, required: ['p256dh', 'auth'], properties: { p256dh: base64url(80, 100), auth: base64url(16, 32) } },
  },
} as const;

const loopbackHosts = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Herald POSTs to every stored endpoint, so an endpoint is refused unless it is an https:// URL (what
 * every browser's push service gives): a subscriber must not be able to aim Herald at a plain-HTTP
 * service inside its network. `allowLoopback` admits http:// on loopback hosts, for tests and development.
 */
function checkEndpoint(endpoint: string, allowLoopback: boolean): void {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw errors.validationFailed('body/endpoint must be a URL');
  }
  if (url.protocol === 'https:' && !url.username && !url.password) return;
  if (allowLoopback && url.protocol === 'http:' && loopbackHosts.has(url.hostname)) return;
  throw errors.validationFailed(
    `body/endpoint must be an https:// URL${allowLoopback ? ' (or http:// on a loopback host)' : ''}, without credentials`,
  );
}

export async function pushRoutes(app: FastifyInstance, opts: { store: Store; vapidPublicKey: string; config: PushConfig }): Promise<void> {
  const { store, config } = opts;

  app.get(
    '/push/vapid-public-key',
    {
      schema: {
        summary: "The VAPID public key browsers subscribe with (pushManager.subscribe's applicationServerKey)",
        response: { 200: { type: 'object', properties: { publicKey: { type: 'string' } } } },
      },
    },
    async () => ({ publicKey: opts.vapidPublicKey }),
  );

  app.post<{ Body: SubscriptionBody }>(
    '/push/subscriptions',
    {
      preHandler: app.requireUser,
      schema: { summary: "Register a browser's PushSubscription for the caller", body: subscriptionSchema, response: errorResponses },
    },
    async (request, reply) => {
      const { endpoint, keys } = request.body;
      checkEndpoint(endpoint, config.allowLoopbackEndpoints);
      await store.addPushSubscription(request.userId, { endpoint, p256dh: keys.p256dh, auth: keys.auth }, maxSubscriptionsPerUser);
      return reply.code(201).send();
    },
  );

  app.delete<{ Body: { endpoint: string } }>(
    '/push/subscriptions',
    {
      preHandler: app.requireUser,
      schema: {
        summary: "Remove one of the caller's push subscriptions (body: the PushSubscription, or just its endpoint)",
        body: { type: 'object', required: ['endpoint'], properties: { endpoint: { type: 'string', minLength: 1, maxLength: 2048 } } },
        response: errorResponses,
      },
    },
    async (request, reply) => {
      // 204 whether or not it was there: the client's goal (no such subscription) holds either way.
      await store.removePushSubscription(request.body.endpoint, request.userId);
      return reply.code(204).send();
    },
  );
}
