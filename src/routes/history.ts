import type { FastifyInstance } from 'fastify';
import type { Bus } from '../bus/bus.js';
import { sendError } from '../errors.js';
import { errorResponses, idString, inboxItemSchema, topicsQuery } from '../schemas.js';
import type { Store } from '../store/store.js';
import type { UserEvent } from '../types.js';

interface ListQuery {
  topic?: string[];
  limit: number;
  before?: string;
  unread: boolean;
}

export async function historyRoutes(app: FastifyInstance, opts: { store: Store; bus: Bus; maxTopics: number }): Promise<void> {
  const { store, bus } = opts;
  const idParams = { type: 'object', required: ['id'], properties: { id: idString } } as const;
  const topic = topicsQuery(opts.maxTopics);

  /** Tells the user's other tabs, on every instance; the change is committed whatever the bus does. */
  const announce = (e: UserEvent) =>
    bus.publish(e).catch((err: unknown) => app.log.error({ err }, 'bus publish of a user event failed'));

  app.addHook('preHandler', app.requireUser);

  app.get<{ Querystring: ListQuery }>(
    '/notifications',
    {
      schema: {
        summary: "The caller's notifications, newest first",
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            topic,
            limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 },
            before: idString,
            unread: { type: 'boolean', default: false },
            token: { type: 'string' },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              items: { type: 'array', items: inboxItemSchema },
              nextCursor: { type: ['string', 'null'] },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const audience = { user: request.userId, topics: q.topic ?? [] };
      const rows = await store.list(audience, {
        before: q.before === undefined ? undefined : Number(q.before),
        limit: q.limit + 1,
        unreadOnly: q.unread,
      });
      const items = rows.slice(0, q.limit);
      // The cursor is a string so it round-trips as the `before` query parameter unchanged.
      return { items, nextCursor: rows.length > q.limit ? String(items[items.length - 1]!.id) : null };
    },
  );

  app.get<{ Querystring: { topic?: string[] } }>(
    '/notifications/unread-count',
    {
      schema: {
        summary: "How many of the caller's notifications are unread",
        querystring: { type: 'object', additionalProperties: false, properties: { topic, token: { type: 'string' } } },
        response: { 200: { type: 'object', properties: { count: { type: 'integer' } } }, ...errorResponses },
      },
    },
    async (request) => ({ count: await store.unreadCount({ user: request.userId, topics: request.query.topic ?? [] }) }),
  );

  app.post<{ Params: { id: string } }>(
    '/notifications/:id/read',
    {
      schema: {
        summary: 'Mark one notification read for the caller',
        params: idParams,
        response: { 200: { type: 'object', properties: { id: { type: 'integer' }, read: { type: 'boolean' } } }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const id = Number(request.params.id);
      if (!(await store.markRead(request.userId, id))) return sendError(reply, 404, `notification ${id} not found`);
      await announce({ kind: 'read', user: request.userId, ids: [id] });
      return { id, read: true };
    },
  );

  app.post(
    '/notifications/read-all',
    {
      schema: {
        summary: "Mark all the caller's notifications read",
        response: { 200: { type: 'object', properties: { upTo: { type: 'integer' } } }, ...errorResponses },
      },
    },
    async (request) => {
      const upTo = await store.markAllRead(request.userId);
      await announce({ kind: 'read-all', user: request.userId, upTo });
      return { upTo };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/notifications/:id',
    { schema: { summary: 'Delete one notification from the caller’s history', params: idParams, response: errorResponses } },
    async (request, reply) => {
      const id = Number(request.params.id);
      if (!(await store.remove(request.userId, id))) return sendError(reply, 404, `notification ${id} not found`);
      await announce({ kind: 'deleted', user: request.userId, id });
      return reply.code(204).send();
    },
  );
}
