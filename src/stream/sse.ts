// Server-Sent Events framing (https://html.spec.whatwg.org/multipage/server-sent-events.html).
// Written by hand because it is a few lines and sits on the hot path of every delivery.
import type { OutgoingHttpHeaders } from 'node:http';
import type { Writable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { StreamConfig } from '../config.js';
import type { Metrics } from '../metrics.js';
import type { Replay } from './recent.js';
import { HeldSocket, writeAndDrain, type Flusher } from './cork.js';
import { detachFromHttp } from '../http/detach.js';
import type { Hub } from './hub.js';
import type { OutEvent } from './out-event.js';
import { replayChunkBytes, Subscription, type Sink } from './subscription.js';

const lineBreak = /\r\n|\r|\n/;

/**
 * One SSE event. `data` is split on every line break the spec knows (CRLF, CR, LF), each piece on its
 * own `data:` line, so no payload can end the event early or forge an `id:` or `event:` field.
 */
export function sseEvent(event: string, data: string, id?: number): string {
  if (lineBreak.test(event)) throw new Error('SSE event names cannot contain line breaks');
  let out = id === undefined ? '' : `id: ${id}\n`;
  out += `event: ${event}\n`;
  for (const line of data.split(lineBreak)) out += `data: ${line}\n`;
  return out + '\n';
}

/** An event's SSE frame, encoded once for every stream that receives it. */
export function sseFrame(ev: OutEvent): string {
  return (ev.frames.sse ??= sseEvent(ev.event, ev.json, ev.id));
}

/** The same frame as bytes: every stream's socket writes this one buffer. */
function sseFrameBytes(ev: OutEvent): Buffer {
  return (ev.frames.sseBytes ??= Buffer.from(sseFrame(ev)));
}

/** A comment line: ignored by clients, keeps proxies and load balancers from timing the stream out. */
export function sseComment(text: string): string {
  return `: ${text.replace(/\r\n|\r|\n/g, ' ')}\n\n`;
}

/**
 * An event with nothing but an id: the client keeps it as its last event id, sent back as
 * `Last-Event-ID` when it reconnects, and dispatches nothing to the page, since there is no data.
 */
export function sseId(id: number): string {
  return `id: ${id}\n\n`;
}

export function sseRetry(ms: number): string {
  return `retry: ${ms}\n\n`;
}

/**
 * Response headers for a stream: no caching, no proxy buffering (nginx honours X-Accel-Buffering).
 * No `Connection: keep-alive`: the stream's body ends with its connection, so Node answers `close`.
 */
export const sseHeaders = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
} as const;

export interface SseOptions extends StreamConfig {
  replay: Replay;
  hub: Hub;
  metrics: Metrics;
  flusher: Flusher;
}

const heartbeat = Buffer.from(sseComment('heartbeat'));

/**
 * Writes to one SSE stream: straight to its socket (taken out of node:http, see detach.ts, and not
 * chunked, see below), so a fan-out costs one shared buffer and at most one syscall per stream per
 * flush (a tick, or a few ms under load: see cork.ts). A client that stops reading would make its queued output grow without bound; past
 * `maxPending` bytes the stream is cut instead, and the client resumes by Last-Event-ID.
 */
class SseSink implements Sink {
  readonly carriesUnread = true;
  private readonly held: HeldSocket;

  constructor(
    /** The detached socket; the response itself only where node:http could not let it go. */
    private readonly out: Writable,
    private readonly maxPending: number,
    private readonly metrics: Metrics,
    private readonly flusher: Flusher,
    /** Whether `out` is corked on the stream's head, which then leaves with the first write. */
    private headHeld: boolean,
  ) {
    this.held = new HeldSocket(out);
  }

  /** Holds the socket until its flush (cork.ts); the first time, the held head goes with it. */
  private hold(): void {
    if (!this.headHeld) return this.flusher.hold(this.held);
    this.headHeld = false;
    this.flusher.adopt(this.held);
  }

  private write(chunk: Buffer | string): void {
    const out = this.out;
    if (out.destroyed) return;
    this.hold();
    out.write(chunk);
    if (out.writableLength > this.maxPending) {
      this.metrics.slowConsumerDropped();
      out.destroy();
    }
  }

  send(ev: OutEvent): void {
    this.write(sseFrameBytes(ev));
  }

  async sendMany(evs: readonly OutEvent[]): Promise<void> {
    // The resume point comes first, but a replay before it must not wait on a drain the cork would stop.
    if (this.headHeld) this.hold();
    let chunk = '';
    for (const ev of evs) {
      chunk += sseFrame(ev);
      if (chunk.length < replayChunkBytes) continue;
      if (!(await writeAndDrain(this.out, chunk))) return;
      chunk = '';
    }
    if (chunk) await writeAndDrain(this.out, chunk);
  }

  resumePoint(id: number): void {
    this.write(sseId(id));
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

/** Whether an SSE request resumes from an id: a browser's reconnect (header) or a first connect (query). */
export function resumes(request: FastifyRequest): boolean {
  return request.headers['last-event-id'] !== undefined || (request.query as { lastEventId?: string }).lastEventId !== undefined;
}

/**
 * Serves one SSE stream on a request that passed its route's checks: the head and `retry:`, then the
 * socket is taken out of node:http and the subscription writes to it (catch-up, then live).
 */
export async function openSseStream(
  request: FastifyRequest<{ Querystring: { topic?: string[]; lastEventId?: string }; Headers: { 'last-event-id'?: string } }>,
  reply: FastifyReply,
  opts: SseOptions,
): Promise<void> {
  const user = request.userId;
  const res = reply.raw;
  reply.hijack();
  // Hijacked replies skip Fastify's header handling: carry over what hooks (CORS) already set.
  // Not chunked: the body ends when the connection does, as a stream's does anyway, so bytes
  // written to the socket are the event stream itself, with no chunk framing per write.
  res.useChunkedEncodingByDefault = false;
  // The head waits for the stream's first write, its resume point (with the replay when resuming from
  // the ring, a few ms later): one write and one wake-up of the client instead of two, which a
  // reconnect storm pays for every stream. node:http adds no cork of its own to a corked socket.
  const socket = res.socket;
  socket?.cork();
  res.writeHead(200, { ...(reply.getHeaders() as OutgoingHttpHeaders), ...sseHeaders });
  res.write(sseRetry(opts.retryMs));
  socket?.setNoDelay(true);
  const detached = detachFromHttp(res);
  if (!detached) socket?.uncork();
  const out = detached ?? res;
  const sink = new SseSink(out, opts.maxPendingBytes, opts.metrics, opts.flusher, detached !== null);
  const sub = new Subscription(opts, user, request.query.topic ?? [], sink);
  out.on('close', () => sub.close());
  try {
    await sub.start(lastEventId(request.headers['last-event-id'], request.query.lastEventId));
  } catch (err) {
    request.log.error({ err }, 'catch-up failed; closing the stream so the client retries');
    res.destroy();
  }
}
