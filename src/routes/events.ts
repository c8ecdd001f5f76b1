import type { FastifyInstance } from 'fastify';
import { errorResponses, idString, streamQuery } from '../schemas.js';
import { resumeLimit, streamLimit, type ResumeLimiter } from '../stream/limits.js';
import { openSseStream, resumes, type SseOptions } from '../stream/sse.js';

/** Mounts the SSE transport at GET /events, behind its checks: credentials, topics, stream and resume limits. */
export async function eventRoutes(app: FastifyInstance, opts: SseOptions & { resumes: ResumeLimiter }): Promise<void> {
  app.get<{ Querystring: { topic?: string[]; lastEventId?: string }; Headers: { 'last-event-id'?: string } }>(
    '/events',
    {
      preHandler: [app.requireUser, app.requireTopics, streamLimit(opts.hub, opts.maxStreamsPerUser), resumeLimit(opts.resumes, resumes)],
      schema: {
        summary: 'Server-Sent Events stream of the caller’s notifications, with catch-up from Last-Event-ID',
        headers: { type: 'object', properties: { 'last-event-id': idString } },
        querystring: streamQuery(opts.maxTopics),
        response: errorResponses,
      },
    },
    (request, reply) => openSseStream(request, reply, opts),
  );
}
