import type { FastifyInstance } from 'fastify';
import { errors } from '../errors.js';
import { errorResponses } from '../schemas.js';
import type { OutboxEntry, Store, WebhookStatus } from '../store/store.js';

export interface WebhookRoutesOptions {
  store: Store;
  /** A retried job is due now: the dispatcher should look. */
  wake: () => void;
}

const deliverySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    endpoint: { type: 'string' },
    event: { type: 'string' },
    status: { type: 'string', enum: ['pending', 'dead'] },
    attempts: { type: 'integer' },
    nextAttemptAt: { type: 'string' },
    lastError: { type: ['string', 'null'] },
    createdAt: { type: 'string' },
    payload: { type: 'object', additionalProperties: true },
  },
} as const;

const view = (e: OutboxEntry) => ({
  id: e.id,
  endpoint: e.endpoint,
  event: e.event,
  status: e.status,
  attempts: e.attempts,
  nextAttemptAt: new Date(e.nextAttemptAt).toISOString(),
  lastError: e.lastError,
  createdAt: new Date(e.createdAt).toISOString(),
  payload: JSON.parse(e.payload) as unknown,
});

/** The webhook outbox for operators, with the publisher credential: what is pending or dead, and a retry of a dead one. */
export async function webhookRoutes(app: FastifyInstance, opts: WebhookRoutesOptions): Promise<void> {
  const { store } = opts;
  app.addHook('onRequest', app.requirePublisher);

  app.get<{ Querystring: { status: WebhookStatus; limit: number } }>(
    '/webhooks/deliveries',
    {
      schema: {
        summary: 'Webhook deliveries not yet made: pending (to be attempted) or dead (out of attempts), oldest first',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            status: { type: 'string', enum: ['pending', 'dead'], default: 'dead' },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 },
          },
        },
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: deliverySchema } } }, ...errorResponses },
      },
    },
    async (request) => ({ items: (await store.listWebhooks(request.query.status, request.query.limit)).map(view) }),
  );

  app.post<{ Params: { id: string } }>(
    '/webhooks/deliveries/:id/retry',
    {
      schema: {
        summary: 'Make a dead webhook delivery pending again, due now, with its attempts counted from zero',
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^msg_[A-Za-z0-9_-]{1,64}$' } } },
        response: { 200: { type: 'object', properties: { id: { type: 'string' }, status: { type: 'string' } } }, ...errorResponses },
      },
    },
    async (request) => {
      const { id } = request.params;
      if (!(await store.retryWebhook(id))) throw errors.webhookDeliveryNotFound(id);
      opts.wake();
      return { id, status: 'pending' };
    },
  );
}
