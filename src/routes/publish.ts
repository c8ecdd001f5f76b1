import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { PublishConfig } from '../config.js';
import type { Publisher } from '../domain/publisher.js';
import { errors } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { errorResponses, errorSchema, presentationInput, storedNotificationSchema, topicSchema, userIdSchema } from '../schemas.js';
import type { Action, Actor, NewNotification, Target } from '../types.js';

/** Every optional field may be null, as history answers it when absent: null is leaving it out. */
interface PublishBody {
  title: string;
  body?: string | null;
  data?: Record<string, unknown> | null;
  type?: string | null;
  url?: string | null;
  icon?: string | null;
  actor?: Actor | null;
  actions?: Action[] | null;
  user?: string;
  users?: string[];
  topic?: string;
  broadcast?: true;
  critical?: boolean;
}

const bodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['title'],
  properties: {
    title: { type: 'string', minLength: 1, maxLength: 500 },
    body: { type: ['string', 'null'], maxLength: 20_000 },
    data: { type: ['object', 'null'], additionalProperties: true },
    type: { type: ['string', 'null'], minLength: 1, maxLength: 64 },
    user: userIdSchema,
    users: { type: 'array', items: userIdSchema, minItems: 1, maxItems: 1000 },
    topic: topicSchema,
    broadcast: { const: true },
    ...presentationInput,
    critical: { type: 'boolean' },
  },
  oneOf: [{ required: ['user'] }, { required: ['users'] }, { required: ['topic'] }, { required: ['broadcast'] }],
} as const;

function target(b: PublishBody): Target {
  if (b.user !== undefined) return { users: [b.user] };
  if (b.users !== undefined) return { users: b.users };
  if (b.topic !== undefined) return { topic: b.topic };
  return { broadcast: true };
}

export interface PublishOptions extends PublishConfig {
  publisher: Publisher;
  metrics: Metrics;
}

export async function publishRoutes(app: FastifyInstance, opts: PublishOptions): Promise<void> {
  const { publisher, metrics } = opts;
  const rateLimit =
    opts.rateLimit === 0
      ? undefined
      : {
          max: opts.rateLimit,
          timeWindow: opts.rateWindowMs,
          // Counted per authenticated publisher, so the check runs after requirePublisher (onRequest):
          // unauthenticated requests are refused with 401 and never use up a publisher's allowance.
          hook: 'preHandler' as const,
          keyGenerator: (request: FastifyRequest) => request.publisherId,
          // Thrown by the rate limiter, so the error handler answers it like any other error.
          errorResponseBuilder: (_request: FastifyRequest, ctx: { after: string }) => errors.publishRateLimited(opts.rateLimit, opts.rateWindowMs, ctx.after),
        };
  app.post<{ Body: PublishBody; Headers: { 'idempotency-key'?: string } }>(
    '/notifications',
    {
      // Before the body is read: a caller without a valid credential never makes the server buffer one.
      onRequest: app.requirePublisher,
      config: rateLimit ? { rateLimit } : {},
      schema: {
        summary: 'Publish a notification to a user, some users, a topic or everyone',
        headers: { type: 'object', properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 255 } } },
        body: bodySchema,
        response: { 200: storedNotificationSchema, 201: storedNotificationSchema, 422: errorSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const n: NewNotification = {
        title: b.title,
        body: b.body ?? undefined,
        data: b.data ?? undefined,
        type: b.type ?? undefined,
        url: b.url ?? undefined,
        icon: b.icon ?? undefined,
        actor: b.actor ?? undefined,
        actions: b.actions ?? undefined,
        // false is leaving it out, so both hash alike for Idempotency-Key.
        critical: b.critical === true ? true : undefined,
        target: target(b),
      };
      const key = request.headers['idempotency-key'];
      const result = await publisher.publish(n, key === undefined ? undefined : { publisher: request.publisherId, key }, request.log);
      if (result.status === 'conflict') throw errors.idempotencyConflict();
      if (result.status === 'replayed') {
        // The first attempt was committed and published; answer as it was answered, publish nothing new.
        return reply.code(201).header('idempotent-replayed', 'true').send(result.notification);
      }
      // Timed here rather than by the Publisher: the histogram is the HTTP request's, from its arrival.
      metrics.publishLatency(reply.elapsedTime / 1000);
      return reply.code(201).send(result.notification);
    },
  );
}
