// WebSocket side of a stream: writing frames to one socket, and telling live peers from dead ones.
import type { Writable } from 'node:stream';
import { WebSocket } from 'ws';
import { HeldSocket, writeAndDrain, type Flusher } from './cork.js';
import type { OutEvent } from './out-event.js';
import type { Metrics } from '../metrics.js';
import { replayChunkBytes, type Sink } from './subscription.js';

/** The close codes Herald sends (RFC 6455 section 7.4.1). */
export const closeCode = {
  /** Server shutting down: reconnect (elsewhere) and resume. */
  goingAway: 1001,
  /** The client broke a rule: sent messages faster than allowed. */
  policyViolation: 1008,
  /** A message larger than allowed (sent by `ws` itself, from its maxPayload option). */
  messageTooBig: 1009,
  /** Catch-up failed on the server: reconnect and resume. */
  internalError: 1011,
  /** Too many resumes: reconnect and resume after the time the error reply names. */
  tryAgainLater: 1013,
} as const;

/** How long a closing socket waits for the peer's close frame before it is cut. */
const closeHandshakeMs = 1000;

/** A whole unfragmented text frame, as a server sends it (unmasked): header, then `payload`. */
export function textFrame(payload: Buffer): Buffer {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + n);
  frame[0] = 0x81; // FIN, opcode 1 (text)
  if (n < 126) frame[1] = n;
  else if (n < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(n), 2);
  }
  payload.copy(frame, head);
  return frame;
}

/**
 * An event's whole WebSocket frame: the same JSON as the SSE `data:` line, wrapped with its name and
 * id. Server frames are not masked, so the frame is the same bytes for every socket: encoded once,
 * then written to each socket as SSE frames are, with no per-socket framing by `ws`.
 */
function wsFrame(ev: OutEvent): Buffer {
  return (ev.frames.ws ??= textFrame(Buffer.from(`{"event":"${ev.event}"${ev.id === undefined ? '' : `,"id":${ev.id}`},"data":${ev.json}}`)));
}

/**
 * Writes to one WebSocket. A client that stops reading would make its queued output grow without
 * bound; past `maxPending` bytes the socket is dropped (no close frame could reach it past the queue),
 * and the client resumes from its last id. Each hub heartbeat sends a ping; a peer that has not
 * answered the previous one is gone (or cannot read) and is dropped, which frees its place in the hub.
 */
export class WsSink implements Sink {
  readonly carriesUnread = true;
  private answered = true;
  private readonly held: HeldSocket;

  constructor(
    private readonly socket: WebSocket,
    /**
     * The TCP socket under `socket` (the upgraded request's): held by the flusher as SSE sockets are,
     * and written to directly with whole frames. That keeps frame order with what `ws` itself writes
     * (pings, pongs, the close frame) because `ws` writes each frame at once when it is not
     * compressing, and Herald never enables permessage-deflate.
     */
    private readonly raw: Writable,
    private readonly maxPending: number,
    private readonly metrics: Metrics,
    private readonly flusher: Flusher,
    /** Called on every hub heartbeat the peer survives. */
    private readonly onHeartbeat: () => void,
  ) {
    this.held = new HeldSocket(raw);
    socket.on('pong', () => (this.answered = true));
  }

  /** Writes one whole frame; also used for command replies, so they count against the same bound. */
  writeFrame(frame: Buffer): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    this.flusher.hold(this.held);
    this.raw.write(frame);
    if (this.socket.bufferedAmount > this.maxPending) {
      this.metrics.slowConsumerDropped();
      this.socket.terminate();
    }
  }

  /** A text message (a command reply). */
  write(text: string): void {
    this.writeFrame(textFrame(Buffer.from(text)));
  }

  send(ev: OutEvent): void {
    this.writeFrame(wsFrame(ev));
  }

  sendMany(evs: readonly OutEvent[]): Promise<void> {
    return this.writeMany(evs.map(wsFrame));
  }

  /** Writes a replay's whole frames (of any protocol on this socket), paced by the socket draining. */
  async writeMany(frames: readonly Buffer[]): Promise<void> {
    let chunk: Buffer[] = [];
    let bytes = 0;
    for (const frame of frames) {
      chunk.push(frame);
      bytes += frame.length;
      if (bytes < replayChunkBytes) continue;
      if (!(await this.writeReplay(chunk))) return;
      chunk = [];
      bytes = 0;
    }
    if (chunk.length > 0) await this.writeReplay(chunk);
  }

  /** One piece of a replay, paced by the socket draining as SSE replays are; false once the socket is not open. */
  private async writeReplay(frames: Buffer[]): Promise<boolean> {
    if (this.socket.readyState !== WebSocket.OPEN) return false;
    return writeAndDrain(this.raw, Buffer.concat(frames));
  }

  /** `ready`, shaped like the other frames: a client that saves every `id` it sees resumes from here. */
  resumePoint(id: number): void {
    this.write(`{"event":"ready","id":${id},"data":{}}`);
  }

  heartbeat(): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    if (!this.answered) return void this.socket.terminate();
    this.answered = false;
    this.socket.ping();
    this.onHeartbeat();
  }

  /** `code`: the Pusher protocol asks for its own (4200, reconnect at once). */
  end(code: number = closeCode.goingAway): void {
    this.socket.close(code, 'server shutting down');
    // `ws` waits 30 s for the peer's close frame; a peer that cannot answer would hold shutdown that long.
    setTimeout(() => this.socket.terminate(), closeHandshakeMs).unref();
  }

  abort(): void {
    this.socket.terminate();
  }
}
