import type { FastifyInstance } from 'fastify';
import { errors } from '../errors.js';
import type { Inbox } from '../domain/inbox.js';
import { errorResponses, idString, inboxItemSchema, topicsQuery } from '../schemas.js';
import type { Store } from '../store/store.js';

interface ListQuery {
  topic?: string[];
  limit: number;
  before?: string;
  unread: boolean;
  includeMuted: boolean;
}

export async function historyRoutes(app: FastifyInstance, opts: { store: Store; inbox: Inbox; maxTopics: number }): Promise<void> {
  const { store, inbox } = opts;
  const idParams = { type: 'object', required: ['id'], properties: { id: idString } } as const;
  const topic = topicsQuery(opts.maxTopics);

  app.addHook('preHandler', app.requireUser);
  app.addHook('preHandler', app.requireTopics);

  app.get<{ Querystring: ListQuery }>(
    '/notifications',
    {
      schema: {
        summary: "The caller's notifications, newest first; with `topic`, only those of the topics named",
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            topic,
            limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 },
            before: idString,
            unread: { type: 'boolean', default: false },
            includeMuted: { type: 'boolean', default: false },
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
        topicsOnly: q.topic !== undefined,
        includeMuted: q.includeMuted,
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
        summary: "How many of the caller's notifications are unread; with `topic`, of the topics named only",
        querystring: { type: 'object', additionalProperties: false, properties: { topic, token: { type: 'string' } } },
        response: { 200: { type: 'object', properties: { count: { type: 'integer' } } }, ...errorResponses },
      },
    },
    async (request) => {
      const { topic } = request.query;
      return { count: await store.unreadCount({ user: request.userId, topics: topic ?? [] }, { topicsOnly: topic !== undefined }) };
    },
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
    async (request) => {
      const id = Number(request.params.id);
      if (!(await inbox.markRead(request.userId, id))) throw errors.notificationNotFound(id);
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
    async (request) => ({ upTo: await inbox.markAllRead(request.userId) }),
  );

  app.delete<{ Params: { id: string } }>(
    '/notifications/:id',
    { schema: { summary: 'Delete one notification from the caller’s history', params: idParams, response: errorResponses } },
    async (request, reply) => {
      const id = Number(request.params.id);
      if (!(await inbox.remove(request.userId, id))) throw errors.notificationNotFound(id);
      return reply.code(204).send();
    },
  );
}
