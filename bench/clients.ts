// A load process holding many streams to Herald (raw-HTTP SSE) or to the Socket.IO peer (raw WebSocket
// speaking Engine.IO 4), driven over IPC by load.ts. Both clients are lean on purpose: they share the
// machine with the server, so every event costs them a buffer scan, not a parser and an object.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { createSigner } from 'fast-jwt';
import { Histogram, nowMs, serve, type Msg } from './lib.js';

interface Options {
  proto: 'sse' | 'ws' | 'sio' | 'pusher';
  port: number;
  /** Source address to bind, or '' to let the kernel pick (see ClientPool in load.ts). */
  localAddress: string;
  secret: string;
  /** Pusher only: the app key and the channel to subscribe to. */
  key?: string;
  channel?: string;
}

const opts = JSON.parse(process.argv[2]!) as Options;
const sign = createSigner({ key: opts.secret, algorithm: 'HS256' });

/**
 * Every bench notification carries `data: {"t": <publisher's nowMs()>}`: this finds each one. A Pusher
 * frame carries its data as a JSON string, so there the quotes are escaped.
 */
const marker = Buffer.from(opts.proto === 'pusher' ? '\\"t\\":' : '"t":');

class Stats {
  received = 0;
  hist = new Histogram();
  firstAt = 0;
  lastAt = 0;
}
let stats = new Stats();

/** Counts the bench notifications in `buf[0, end)` and records their delivery latency. */
function scan(buf: Buffer, end: number): number {
  let n = 0;
  let at = buf.indexOf(marker);
  const now = nowMs();
  while (at !== -1 && at < end) {
    let i = at + marker.length;
    let j = i;
    while (j < end && ((buf[j]! >= 0x30 && buf[j]! <= 0x39) || buf[j] === 0x2e)) j++;
    stats.hist.record(now - Number(buf.toString('latin1', i, j)));
    n++;
    at = buf.indexOf(marker, j);
  }
  if (n > 0) {
    if (stats.received === 0) stats.firstAt = now;
    stats.lastAt = now;
    stats.received += n;
  }
  return n;
}

interface Stream {
  socket: net.Socket;
  /** Resolves once the server accepted the stream (response head or Socket.IO connect ack). */
  ready: Promise<void>;
  /** Notifications this stream has received. */
  count: number;
  /** Called after each chunk that carried notifications. */
  onEvents?: () => void;
}

const streams: Stream[] = [];

/**
 * An SSE stream over a raw socket. Events end with a blank line; bytes after the last one wait for
 * the next chunk so a marker split across TCP segments is still read whole. (Chunked-encoding size
 * lines sit between events and never contain the marker.)
 */
function openSse(user: string, lastEventId?: number): Stream {
  const socket = net.connect({ port: opts.port, host: '127.0.0.1', ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
  const s: Stream = { socket, ready: undefined as unknown as Promise<void>, count: 0 };
  s.ready = new Promise((resolve, reject) => {
    let head = true;
    let rest: Buffer | null = null;
    socket.on('connect', () => {
      socket.write(
        `GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nAuthorization: Bearer ${sign({ sub: user })}\r\n` +
          (lastEventId === undefined ? '' : `Last-Event-ID: ${lastEventId}\r\n`) +
          '\r\n',
      );
    });
    socket.on('data', (chunk: Buffer) => {
      let buf = rest ? Buffer.concat([rest, chunk]) : chunk;
      rest = null;
      if (head) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return void (rest = buf);
        if (!buf.toString('latin1', 0, 12).endsWith('200')) {
          reject(new Error(`stream refused: ${buf.toString('latin1', 0, end)}`));
          return void socket.destroy();
        }
        head = false;
        resolve();
        buf = buf.subarray(end + 4);
      }
      const cut = buf.lastIndexOf('\n\n');
      const n = cut === -1 ? 0 : scan(buf, cut);
      if (n > 0) {
        s.count += n;
        s.onEvents?.();
      }
      // After a complete event only the chunk's CRLF is left: keep anything longer for the next chunk.
      if (buf.length - (cut + 2) > 2) rest = Buffer.from(buf.subarray(cut === -1 ? 0 : cut + 2));
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error('closed before the stream opened')));
  });
  return s;
}

/** A masked client frame (clients must mask; the mask is zero, which the spec allows). */
function wsFrame(opcode: number, payload: Buffer): Buffer {
  if (payload.length > 125) {
    const h = Buffer.from([0x80 | opcode, 0x80 | 126, payload.length >> 8, payload.length & 0xff, 0, 0, 0, 0]);
    return Buffer.concat([h, payload]);
  }
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
}

const wsText = (text: string): Buffer => wsFrame(0x1, Buffer.from(text));

/** Engine.IO's pong, a text frame. */
const pong = wsText('3');

/**
 * A raw WebSocket client: sends the upgrade for `path` with `headers`, then hands each whole frame
 * (opcode, payload) to `onFrame`; answers WebSocket pings itself, so the server does not drop it.
 * The stream is ready when `onFrame` calls `ready()`.
 */
function openWebSocket(
  path: string,
  headers: string,
  onFrame: (s: Stream, opcode: number, payload: Buffer, ready: () => void, fail: (e: Error) => void) => void,
): Stream {
  const socket = net.connect({ port: opts.port, host: '127.0.0.1', ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
  const s: Stream = { socket, ready: undefined as unknown as Promise<void>, count: 0 };
  s.ready = new Promise((resolve, reject) => {
    let head = true;
    let rest: Buffer | null = null;
    socket.on('connect', () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${headers}` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    socket.on('data', (chunk: Buffer) => {
      let buf = rest ? Buffer.concat([rest, chunk]) : chunk;
      rest = null;
      if (head) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return void (rest = buf);
        if (!buf.toString('latin1', 0, 12).endsWith('101')) {
          reject(new Error(`upgrade refused: ${buf.toString('latin1', 0, end)}`));
          return void socket.destroy();
        }
        head = false;
        buf = buf.subarray(end + 4);
      }
      let at = 0;
      while (buf.length - at >= 2) {
        let len = buf[at + 1]! & 0x7f;
        let start = at + 2;
        if (len === 126) {
          if (buf.length - at < 4) break;
          len = buf.readUInt16BE(at + 2);
          start = at + 4;
        } else if (len === 127) {
          if (buf.length - at < 10) break;
          len = Number(buf.readBigUInt64BE(at + 2));
          start = at + 10;
        }
        if (buf.length < start + len) break;
        const opcode = buf[at]! & 0x0f;
        const payload = buf.subarray(start, start + len);
        if (opcode === 0x9) socket.write(wsFrame(0xa, Buffer.from(payload)));
        else onFrame(s, opcode, payload, resolve, reject);
        at = start + len;
      }
      if (at < buf.length) rest = Buffer.from(buf.subarray(at));
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error('closed before the stream opened')));
  });
  return s;
}

/**
 * A Socket.IO client over a raw WebSocket: Engine.IO open, Socket.IO CONNECT with the JWT, then
 * `42["notification",{...}]` frames; answers the server's Engine.IO pings so it is not dropped.
 */
const openSio = (user: string): Stream =>
  openWebSocket('/socket.io/?EIO=4&transport=websocket', '', (s, _opcode, payload, ready, fail) => {
    const first = payload[0];
    if (payload.length === 1 && first === 0x32 /* "2": ping */) s.socket.write(pong);
    else if (first === 0x30 /* "0": Engine.IO open */) s.socket.write(wsText(`40${JSON.stringify({ token: sign({ sub: user }) })}`));
    else if (first === 0x34 && payload[1] === 0x30 /* "40": connected */) ready();
    else if (first === 0x34 && payload[1] === 0x34 /* "44": connect error */) fail(new Error(`refused: ${payload.toString('utf8')}`));
    else s.count += scan(payload, payload.length);
  });

/** `{"event":"reply"`: the answer to the `resume` that starts a Herald WebSocket stream. */
const replyMarker = Buffer.from('{"event":"reply"');

/**
 * Herald's own WebSocket (`GET /ws`): the JWT in the Authorization header, a `resume` command as the
 * first message (with `lastEventId` to catch up), ready at its reply, then one frame per event.
 */
function openHeraldWs(user: string, lastEventId?: number): Stream {
  const resume = wsText(JSON.stringify({ type: 'resume', ...(lastEventId === undefined ? {} : { lastEventId }) }));
  const s = openWebSocket('/ws', `Authorization: Bearer ${sign({ sub: user })}\r\n`, (s, _opcode, payload, ready) => {
    if (payload.subarray(0, replyMarker.length).equals(replyMarker)) return ready();
    const n = scan(payload, payload.length);
    if (n > 0) {
      s.count += n;
      s.onEvents?.();
    }
  });
  s.socket.once('data', () => s.socket.write(resume));
  return s;
}

/** `{"event":"pusher_internal:subscription_succeeded"`: Herald confirmed the channel. */
const subscribedMarker = Buffer.from('{"event":"pusher_internal:subscription_succeeded"');

/**
 * A Pusher protocol client, as pusher-js is on the wire: `/app/<key>`, `pusher:subscribe` to the
 * bench channel once `pusher:connection_established` arrives, ready at `subscription_succeeded`.
 */
function openPusher(): Stream {
  const subscribe = wsText(JSON.stringify({ event: 'pusher:subscribe', data: { channel: opts.channel } }));
  const s = openWebSocket(`/app/${opts.key}?protocol=7&client=js&version=8.6.0`, '', (s, _opcode, payload, ready) => {
    if (payload.subarray(0, subscribedMarker.length).equals(subscribedMarker)) return ready();
    const n = scan(payload, payload.length);
    if (n > 0) {
      s.count += n;
      s.onEvents?.();
    }
  });
  s.socket.once('data', () => s.socket.write(subscribe));
  return s;
}

function open(user: string, lastEventId?: number): Stream {
  const s =
    opts.proto === 'sse'
      ? openSse(user, lastEventId)
      : opts.proto === 'ws'
        ? openHeraldWs(user, lastEventId)
        : opts.proto === 'pusher'
          ? openPusher()
          : openSio(user);
  s.ready.catch(() => undefined); // failures are counted where they are awaited
  return s;
}

/** Opens `count` streams for users `${prefix}${offset + i}`, `concurrency` handshakes at a time. */
async function openMany(prefix: string, offset: number, count: number, concurrency: number, timeoutMs: number): Promise<Msg> {
  const t0 = nowMs();
  let next = 0;
  let failed = 0;
  let firstError = '';
  const deadline = t0 + timeoutMs;
  const lane = async () => {
    while (next < count && nowMs() < deadline) {
      const s = open(`${prefix}${offset + next++}`);
      streams.push(s);
      try {
        await Promise.race([s.ready, new Promise((_, rej) => setTimeout(() => rej(new Error('open timed out')), 30_000))]);
      } catch (err) {
        failed++;
        firstError ||= String(err);
        s.socket.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  return { op: 'open', opened: next - failed, failed, firstError, ms: nowMs() - t0 };
}

/** One reconnecting client `behind` events behind: ms from connect until the last missed one arrived. */
async function catchUp(user: string, lastEventId: number, expect: number, timeoutMs: number): Promise<Msg> {
  const t0 = nowMs();
  const s = open(user, lastEventId);
  const deadline = t0 + timeoutMs;
  await s.ready;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, deadline - nowMs()));
    s.onEvents = () => {
      if (s.count < expect) return;
      clearTimeout(timer);
      resolve();
    };
    s.onEvents();
  });
  const ms = nowMs() - t0;
  s.socket.destroy();
  return { op: 'catchup', ms, received: s.count };
}

serve(async (msg) => {
  switch (msg.op) {
    case 'open':
      return openMany(String(msg.prefix), Number(msg.offset), Number(msg.count), Number(msg.concurrency ?? 100), Number(msg.timeoutMs ?? 120_000));
    case 'reset':
      stats = new Stats();
      return { op: 'reset' };
    case 'stats':
      return { op: 'stats', received: stats.received, hist: stats.hist.toJSON(), firstAt: stats.firstAt, lastAt: stats.lastAt };
    case 'catchup':
      return catchUp(String(msg.user), Number(msg.lastEventId), Number(msg.expect), Number(msg.timeoutMs ?? 30_000));
    case 'close': {
      for (const s of streams) s.socket.destroy();
      streams.length = 0;
      return { op: 'close' };
    }
    default:
      throw new Error(`unknown op ${msg.op}`);
  }
});
