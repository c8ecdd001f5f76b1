import type { FastifyInstance } from 'fastify';
import type { Bus } from '../bus/bus.js';
import type { OpsConfig } from '../config.js';
import { bearer, sameSecret } from '../http/auth.js';
import { errors } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { errorSchema } from '../schemas.js';
import type { Store } from '../store/store.js';

export interface OpsOptions extends OpsConfig {
  store: Store;
  bus: Bus;
  metrics: Metrics;
}

/** A readiness probe must answer even when a dependency hangs rather than fails. */
const readyTimeoutMs = 2_000;

type Check = 'ok' | 'unreachable';

const checksSchema = {
  type: 'object',
  properties: { store: { type: 'string', enum: ['ok', 'unreachable'] }, bus: { type: 'string', enum: ['ok', 'unreachable'] } },
} as const;

/** Liveness, readiness and metrics for orchestrators and Prometheus: no subscriber or publisher auth. */
export async function opsRoutes(app: FastifyInstance, opts: OpsOptions): Promise<void> {
  const check = async (name: string, ping: () => Promise<void>): Promise<Check> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${readyTimeoutMs} ms`)), readyTimeoutMs);
    });
    try {
      await Promise.race([ping(), timeout]);
      return 'ok';
    } catch (err) {
      app.log.warn({ err, dependency: name }, 'readiness check failed');
      return 'unreachable';
    } finally {
      clearTimeout(timer);
    }
  };

  app.get(
    '/health',
    {
      schema: {
        summary: 'Liveness: the process is up and serving HTTP',
        security: [],
        response: { 200: { type: 'object', properties: { status: { type: 'string', const: 'ok' } } } },
      },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/ready',
    {
      schema: {
        summary: 'Readiness: the store and the bus answer; 503 when either does not',
        security: [],
        response: {
          200: { type: 'object', properties: { status: { type: 'string', const: 'ready' }, checks: checksSchema } },
          503: { type: 'object', properties: { ...errorSchema.properties, checks: checksSchema } },
        },
      },
    },
    async () => {
      const [store, bus] = await Promise.all([check('store', () => opts.store.ping()), check('bus', () => opts.bus.ping())]);
      const checks = { store, bus };
      if (store === 'ok' && bus === 'ok') return { status: 'ready', checks };
      const down = Object.entries(checks).filter(([, v]) => v !== 'ok').map(([k]) => k);
      throw errors.notReady(down, checks);
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics (text exposition format)',
        ...(opts.metricsToken === undefined ? { security: [] } : {}),
        response: { 200: { description: 'Prometheus text format', type: 'string' }, 401: errorSchema },
      },
    },
    async (request, reply) => {
      if (opts.metricsToken !== undefined) {
        const token = bearer(request);
        if (token === undefined || !sameSecret(token, opts.metricsToken)) throw errors.metricsTokenRequired();
      }
      return reply.type(opts.metrics.registry.contentType).send(await opts.metrics.registry.metrics());
    },
  );
}
