import type { FastifyInstance } from 'fastify';
import { errors } from '../errors.js';
import type { Inbox } from '../domain/inbox.js';
import { errorResponses, idString, inboxItemSchema, topicsQuery } from '../schemas.js';
import type { Store } from '../store/store.js';

/**
 * `?topic=` alone filters: those topics' notifications only. `scope=stream` widens instead, to what a
 * stream with those topics shows (the caller's own, broadcasts and those topics): an inbox's one list.
 */
const scope = { type: 'string', enum: ['topics', 'stream'], default: 'topics' } as const;
type Scope = (typeof scope.enum)[number];
const topicsOnly = (q: { topic?: string[]; scope: Scope }): boolean => q.topic !== undefined && q.scope === 'topics';

interface ListQuery {
  topic?: string[];
  scope: Scope;
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
        summary:
          "The caller's notifications, newest first; with `topic`, only those of the topics named (with `scope=stream` too, the caller's own, broadcasts and those topics)",
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            topic,
            scope,
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
        topicsOnly: topicsOnly(q),
        includeMuted: q.includeMuted,
      });
      const items = rows.slice(0, q.limit);
      // The cursor is a string so it round-trips as the `before` query parameter unchanged.
      return { items, nextCursor: rows.length > q.limit ? String(items[items.length - 1]!.id) : null };
    },
  );

  app.get<{ Querystring: { topic?: string[]; scope: Scope } }>(
    '/notifications/unread-count',
    {
      schema: {
        summary: "How many of the caller's notifications are unread; with `topic`, of the topics named only (`scope` as for the list)",
        querystring: { type: 'object', additionalProperties: false, properties: { topic, scope, token: { type: 'string' } } },
        response: { 200: { type: 'object', properties: { count: { type: 'integer' } } }, ...errorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      return { count: await store.unreadCount({ user: request.userId, topics: q.topic ?? [] }, { topicsOnly: topicsOnly(q) }) };
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
