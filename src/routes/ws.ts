import websocket from '@fastify/websocket';
import type { FastifyInstance } from 'fastify';
import { topicAccessOf } from '../http/auth.js';
import { originCheck } from '../http/cors.js';
import { onWebSocketError, releaseUpgrade } from '../http/detach.js';
import { errors } from '../errors.js';
import { errorResponses, errorSchema, streamQuery } from '../schemas.js';
import { resumeLimit, streamLimit } from '../stream/limits.js';
import { WsSession, type WsOptions } from '../stream/ws-session.js';

/**
 * `@fastify/websocket`, once for the whole app: both WebSocket surfaces (/ws and the Pusher protocol's
 * /app/:key) are routes of it, as it handles every upgrade of the server.
 */
export async function websocketPlugin(app: FastifyInstance, maxMessageBytes: number): Promise<void> {
  await app.register(websocket, {
    // `ws` closes a socket that sends a larger message with 1009 itself.
    options: { maxPayload: maxMessageBytes },
    // Until a wsHandler's `releaseUpgrade`, and for what a wsHandler throws.
    errorHandler: (err, socket, request) => onWebSocketError(err, socket, request.log),
  });
}

/** Mounts the WebSocket transport at GET /ws, behind its checks, run before the upgrade. */
export async function wsRoutes(app: FastifyInstance, opts: WsOptions): Promise<void> {
  app.route<{ Querystring: { topic?: string[]; lastEventId?: string } }>({
    method: 'GET',
    url: '/ws',
    // All run before the upgrade: a refused client gets an HTTP error and never a socket.
    preHandler: [
      originCheck(opts.corsOrigins),
      app.requireUser,
      app.requireTopics,
      streamLimit(opts.hub, opts.maxStreamsPerUser),
      resumeLimit(opts.resumes, (request) => (request.query as { lastEventId?: string }).lastEventId !== undefined),
    ],
    schema: {
      summary: 'WebSocket stream of the caller’s notifications, with commands and resume (an HTTP upgrade)',
      querystring: streamQuery(opts.maxTopics),
      response: { 426: errorSchema, ...errorResponses },
    },
    // A plain GET (no Upgrade header) gets a JSON error like every other endpoint, not an empty 404.
    handler: () => {
      throw errors.upgradeRequired();
    },
    wsHandler: (socket, request) => {
      const raw = releaseUpgrade(socket, request);
      const { userId: user, query, ip, log } = request;
      new WsSession(socket, { raw, user, topics: query.topic ?? [], lastEventId: query.lastEventId, access: topicAccessOf(request), ip, log }, opts);
    },
  });
}
