// The two sides of a reconnect storm (bench/scenarios/storm.ts, test/stream/storm.test.ts): streams
// that reconnect by themselves with their last id, as an EventSource and a reconnecting WebSocket
// client do, checking that every notification arrives once and in order; and a publisher that keeps
// publishing through an outage, retrying each notification with its idempotency key until it is acknowledged.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { createSigner } from 'fast-jwt';
import { nowMs } from './lib.js';

/** What a set of storm streams has seen, summed over its streams. */
export interface StormStats {
  streams: number;
  connected: number;
  /** Lowest last id over the streams: every one of them has everything up to here. */
  minLast: number;
  /** A notification at or below one already received. */
  duplicates: number;
  /** A notification id more than one above the last: ids are dense, so something was skipped. */
  gaps: number;
  reloads: number;
  /** Opens refused (an HTTP status other than 200/101) or cut before they were ready. */
  refused: number;
  reconnects: number;
  /** When every stream was open and at or above the watched id (nowMs), or 0. */
  caughtUpAt: number;
  /** When every stream was open again after the watch began (nowMs), or 0. */
  reconnectedAt: number;
}

interface Stream {
  socket: net.Socket | null;
  open: boolean;
  /** -1 until the first id (the resume point) arrives. */
  last: number;
}

/**
 * Streams of broadcast notifications for users `${prefix}${i}`, over SSE, or over Herald's WebSocket
 * for every `wsEvery`-th one. Each keeps the last id it saw (the SSE resume point and `ready` included,
 * as EventSource keeps `id:`-only events) and, once cut, reconnects after `retryMs` (with jitter, so the
 * storm spreads over a retry interval as real clients' do) with that id, until `stop`.
 */
export class StormStreams {
  private readonly streams: Stream[] = [];
  private readonly sign;
  private stopped = false;
  private counts = { duplicates: 0, gaps: 0, reloads: 0, refused: 0, reconnects: 0 };
  private watch: { id: number; caughtUpAt: number; reconnectedAt: number; timer: NodeJS.Timeout } | undefined;

  constructor(
    private readonly port: number,
    secret: string,
    private readonly retryMs: number,
  ) {
    this.sign = createSigner({ key: secret, algorithm: 'HS256' });
  }

  /** Opens `count` streams, `concurrency` handshakes at a time; resolves once each is open (or refused). */
  async open(prefix: string, count: number, wsEvery: number, concurrency = 100): Promise<void> {
    let next = 0;
    const lane = async () => {
      while (next < count) {
        const i = next++;
        const s: Stream = { socket: null, open: false, last: -1 };
        this.streams.push(s);
        await this.connect(s, `${prefix}${i}`, wsEvery > 0 && i % wsEvery === 0, undefined);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  }

  /** Resolves once the stream is open or has failed (a failure schedules its own reconnect). */
  private connect(s: Stream, user: string, ws: boolean, lastId: number | undefined): Promise<void> {
    return new Promise((resolve) => {
      const socket = net.connect({ port: this.port, host: '127.0.0.1' });
      s.socket = socket;
      const token = this.sign({ sub: user });
      let head = true;
      let rest = '';
      socket.setNoDelay(true);
      socket.on('connect', () => {
        if (ws) {
          socket.write(
            `GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nAuthorization: Bearer ${token}\r\n` +
              `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
          );
        } else {
          socket.write(
            `GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nAuthorization: Bearer ${token}\r\n` +
              (lastId === undefined ? '' : `Last-Event-ID: ${lastId}\r\n`) +
              '\r\n',
          );
        }
      });
      socket.on('data', (chunk: Buffer) => {
        let text = rest + chunk.toString('latin1');
        rest = '';
        if (head) {
          const end = text.indexOf('\r\n\r\n');
          if (end === -1) return void (rest = text);
          const status = text.slice(9, 12);
          if (status !== (ws ? '101' : '200')) {
            this.counts.refused++;
            return void socket.destroy();
          }
          head = false;
          text = text.slice(end + 4);
          if (ws) socket.write(wsText(JSON.stringify({ type: 'resume', ...(lastId === undefined ? {} : { lastEventId: lastId }) })));
          else this.opened(s, resolve);
        }
        rest = ws ? this.wsFrames(s, socket, text, resolve) : this.sseEvents(s, text);
      });
      socket.on('error', () => undefined);
      socket.on('close', () => {
        const wasOpen = s.open;
        s.open = false;
        s.socket = null;
        resolve();
        if (this.stopped) return;
        if (wasOpen) this.counts.reconnects++;
        const delay = this.retryMs * (0.5 + Math.random() / 2);
        setTimeout(() => void this.connect(s, user, ws, s.last < 0 ? undefined : s.last), delay);
      });
    });
  }

  private opened(s: Stream, resolve: () => void): void {
    s.open = true;
    resolve();
  }

  /** SSE events in `text`; returns the incomplete tail. Chunk-size lines never hold `id:` nor `event:`. */
  private sseEvents(s: Stream, text: string): string {
    const cut = text.lastIndexOf('\n\n');
    if (cut === -1) return text;
    for (const block of text.slice(0, cut).split('\n\n')) {
      const m = /(?:^|\n)id: (\d+)/.exec(block);
      if (!m) continue;
      const event = /(?:^|\n)event: (\w+)/.exec(block)?.[1];
      this.saw(s, Number(m[1]), event === undefined ? 'point' : event);
    }
    return text.slice(cut + 2);
  }

  /** Whole WebSocket frames in `text` (server frames are unmasked); returns the incomplete tail. */
  private wsFrames(s: Stream, socket: net.Socket, text: string, resolve: () => void): string {
    let at = 0;
    while (text.length - at >= 2) {
      let len = text.charCodeAt(at + 1) & 0x7f;
      let start = at + 2;
      if (len === 126) {
        if (text.length - at < 4) break;
        len = (text.charCodeAt(at + 2) << 8) | text.charCodeAt(at + 3);
        start = at + 4;
      } else if (len === 127) {
        if (text.length - at < 10) break;
        len = Number(Buffer.from(text.slice(at + 2, at + 10), 'latin1').readBigUInt64BE());
        start = at + 10;
      }
      if (text.length < start + len) break;
      const opcode = text.charCodeAt(at) & 0x0f;
      const payload = text.slice(start, start + len);
      if (opcode === 0x9) socket.write(wsFrame(0xa, Buffer.from(payload, 'latin1')));
      else if (opcode === 0x1) {
        const frame = JSON.parse(Buffer.from(payload, 'latin1').toString('utf8')) as { event: string; id?: number };
        if (frame.event === 'ready') this.opened(s, resolve);
        if (frame.id !== undefined) this.saw(s, frame.id, frame.event === 'ready' ? 'point' : frame.event);
      }
      at = start + len;
    }
    return text.slice(at);
  }

  private saw(s: Stream, id: number, event: string): void {
    if (event === 'reload') this.counts.reloads++;
    if (event === 'notification') {
      if (id <= s.last) this.counts.duplicates++;
      else if (s.last >= 0 && id > s.last + 1) this.counts.gaps++;
    }
    if (id > s.last) s.last = id;
  }

  /** Notes when every stream is open again, and when every one is also at or above `id`. */
  watchFor(id: number): void {
    clearInterval(this.watch?.timer);
    const w = { id, caughtUpAt: 0, reconnectedAt: 0, timer: setInterval(() => this.check(), 10) };
    this.watch = w;
  }

  private check(): void {
    const w = this.watch!;
    const now = nowMs();
    let open = true;
    let caught = true;
    for (const s of this.streams) {
      open &&= s.open;
      caught &&= s.open && s.last >= w.id;
      if (!open && !caught) return;
    }
    if (open && !w.reconnectedAt) w.reconnectedAt = now;
    if (caught && !w.caughtUpAt) w.caughtUpAt = now;
    if (w.reconnectedAt && w.caughtUpAt) clearInterval(w.timer);
  }

  stats(): StormStats {
    let connected = 0;
    let minLast = Infinity;
    for (const s of this.streams) {
      if (s.open) connected++;
      minLast = Math.min(minLast, s.last);
    }
    return {
      streams: this.streams.length,
      connected,
      minLast: this.streams.length ? minLast : 0,
      ...this.counts,
      caughtUpAt: this.watch?.caughtUpAt ?? 0,
      reconnectedAt: this.watch?.reconnectedAt ?? 0,
    };
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.watch?.timer);
    for (const s of this.streams) s.socket?.destroy();
  }
}

/** A masked client frame (the mask is zero, which the protocol allows). */
function wsFrame(opcode: number, payload: Buffer): Buffer {
  const head =
    payload.length > 125
      ? Buffer.from([0x80 | opcode, 0x80 | 126, payload.length >> 8, payload.length & 0xff, 0, 0, 0, 0])
      : Buffer.from([0x80 | opcode, 0x80 | payload.length, 0, 0, 0, 0]);
  return Buffer.concat([head, payload]);
}

const wsText = (text: string): Buffer => wsFrame(0x1, Buffer.from(text));

/**
 * Publishes broadcast notifications one after another at about `perSecond`, each with its own
 * idempotency key, retried with the same key until a 201 (or 200 replay) answers it: through an outage
 * nothing is lost and nothing is published twice. `acked` holds every acknowledged id.
 */
export class SteadyPublisher {
  readonly acked: number[] = [];
  retries = 0;
  private running = true;
  private port: number;
  private readonly done: Promise<void>;

  constructor(
    port: number,
    private readonly key: string,
    private readonly perSecond: number,
  ) {
    this.port = port;
    this.done = this.run();
  }

  private async run(): Promise<void> {
    const start = nowMs();
    for (let i = 0; this.running; i++) {
      const wait = start + (i * 1000) / this.perSecond - nowMs();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const idempotencyKey = `storm-${process.pid}-${i}`;
      for (;;) {
        try {
          const res = await fetch(`http://127.0.0.1:${this.port}/notifications`, {
            method: 'POST',
            headers: { authorization: `Bearer ${this.key}`, 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
            body: JSON.stringify({ broadcast: true, title: `storm ${i}`, data: { i } }),
            signal: AbortSignal.timeout(5000),
          });
          const body = (await res.json()) as { id?: number };
          if ((res.status === 201 || res.status === 200) && body.id !== undefined) {
            this.acked.push(body.id);
            break;
          }
        } catch {
          // The server is down (refused, reset, or cut mid-answer): the same key again, soon.
        }
        this.retries++;
        if (!this.running) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Stops after the publish in progress is acknowledged. */
  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}
