import type { OutgoingHttpHeaders } from 'node:http';
import type { Writable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { corkForTick } from '../cork.js';
import { detachFromHttp } from '../detach.js';
import { sendError } from '../errors.js';
import type { OutEvent } from '../events.js';
import type { Hub } from '../hub.js';
import type { Metrics } from '../metrics.js';
import { resumeLimit, type ResumeLimiter } from '../resume-limit.js';
import { errorResponses, idString, streamQuery } from '../schemas.js';
import { sseComment, sseHeaders, sseId, sseRetry } from '../sse.js';
import type { Store } from '../store/store.js';
import { replayChunkBytes, Subscription, type Sink } from '../subscription.js';

export interface StreamOptions {
  store: Store;
  hub: Hub;
  catchupLimit: number;
  retryMs: number;
  maxTopics: number;
  maxStreamsPerUser: number;
  maxPendingBytes: number;
  metrics: Metrics;
  resumes: ResumeLimiter;
}

const heartbeat = Buffer.from(sseComment('heartbeat'));

/**
 * Writes to one SSE stream: straight to its socket (taken out of node:http, see detach.ts, and not
 * chunked, see below), so a fan-out costs one shared buffer and at most one syscall per stream per
 * tick. A client that stops reading would make its queued output grow without bound; past
 * `maxPending` bytes the stream is cut instead, and the client resumes by Last-Event-ID.
 */
class SseSink implements Sink {
  constructor(
    /** The detached socket; the response itself only where node:http could not let it go. */
    private readonly out: Writable,
    private readonly maxPending: number,
    private readonly metrics: Metrics,
  ) {}

  private write(chunk: Buffer | string): void {
    const out = this.out;
    if (out.destroyed) return;
    corkForTick(out);
    out.write(chunk);
    if (out.writableLength > this.maxPending) {
      this.metrics.slowConsumerDropped();
      out.destroy();
    }
  }

  send(ev: OutEvent): void {
    this.write(ev.sseBytes);
  }

  async sendMany(evs: readonly OutEvent[]): Promise<void> {
    let chunk = '';
    for (const ev of evs) {
      chunk += ev.sse;
      if (chunk.length < replayChunkBytes) continue;
      if (!(await this.writeAndDrain(chunk))) return;
      chunk = '';
    }
    if (chunk) await this.writeAndDrain(chunk);
  }

  resumePoint(id: number): void {
    this.write(sseId(id));
  }

  /** Resolves true once `chunk` is handed to the socket, false if the stream closed first. */
  private async writeAndDrain(chunk: string): Promise<boolean> {
    const out = this.out;
    if (out.destroyed) return false;
    if (!out.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          out.off('drain', done);
          out.off('close', done);
          resolve();
        };
        out.on('drain', done);
        out.on('close', done);
      });
    }
    return !out.destroyed;
  }

  heartbeat(): void {
    this.write(heartbeat);
  }

  /** The body ends with the connection: what is queued is sent, then the connection is closed. */
  end(): void {
    this.out.end();
  }

  abort(): void {
    this.out.destroy();
  }
}

/** Last-Event-ID from the header (EventSource reconnects) or the query (first connect, or clients without headers). */
function lastEventId(header: string | undefined, query: string | undefined): number | undefined {
  const raw = header ?? query;
  return raw === undefined ? undefined : Number(raw);
}

/** preHandler after `requireUser`: refuses a stream past the per-user limit before any stream header or upgrade. */
export function streamLimit(hub: Hub, max: number) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (hub.streamsOf(request.userId) >= max) sendError(reply, 429, `at most ${max} open streams per user`);
  };
}

/** Whether an SSE request resumes from an id: a browser's reconnect (header) or a first connect (query). */
function resumes(request: FastifyRequest): boolean {
  return request.headers['last-event-id'] !== undefined || (request.query as { lastEventId?: string }).lastEventId !== undefined;
}

export async function eventRoutes(app: FastifyInstance, opts: StreamOptions): Promise<void> {
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
    async (request, reply) => {
      const user = request.userId;
      const res = reply.raw;
      reply.hijack();
      // Hijacked replies skip Fastify's header handling: carry over what hooks (CORS) already set.
      // Not chunked: the body ends when the connection does, as a stream's does anyway, so bytes
      // written to the socket are the event stream itself, with no chunk framing per write.
      res.useChunkedEncodingByDefault = false;
      res.writeHead(200, { ...(reply.getHeaders() as OutgoingHttpHeaders), ...sseHeaders });
      res.write(sseRetry(opts.retryMs));
      res.socket?.setNoDelay(true);
      const out = detachFromHttp(res) ?? res;
      const sub = new Subscription(opts, user, request.query.topic ?? [], new SseSink(out, opts.maxPendingBytes, opts.metrics));
      out.on('close', () => sub.close());
      try {
        await sub.start(lastEventId(request.headers['last-event-id'], request.query.lastEventId));
      } catch (err) {
        request.log.error({ err }, 'catch-up failed; closing the stream so the client retries');
        res.destroy();
      }
    },
  );
}
