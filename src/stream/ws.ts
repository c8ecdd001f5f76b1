// WebSocket side of a stream: writing frames to one socket, and telling live peers from dead ones.
import type { Writable } from 'node:stream';
import { WebSocket } from 'ws';
import { corkForTick } from './cork.js';
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

/**
 * An event's WebSocket frame payload: the same JSON as the SSE `data:` line, wrapped with its name and
 * id, as bytes encoded once; every socket sends this same buffer.
 */
function wsFrame(ev: OutEvent): Buffer {
  return (ev.frames.ws ??= Buffer.from(`{"event":"${ev.event}"${ev.id === undefined ? '' : `,"id":${ev.id}`},"data":${ev.json}}`));
}

/** `send` options for a text frame whose UTF-8 bytes are already encoded (a Buffer is binary by default). */
const textFrame = { binary: false } as const;

/**
 * Writes to one WebSocket. A client that stops reading would make its queued output grow without
 * bound; past `maxPending` bytes the socket is dropped (no close frame could reach it past the queue),
 * and the client resumes from its last id. Each hub heartbeat sends a ping; a peer that has not
 * answered the previous one is gone (or cannot read) and is dropped, which frees its place in the hub.
 */
export class WsSink implements Sink {
  private answered = true;

  constructor(
    private readonly socket: WebSocket,
    /** The TCP socket under `socket` (the upgraded request's), corked per tick as SSE streams are. */
    private readonly raw: Writable,
    private readonly maxPending: number,
    private readonly metrics: Metrics,
    /** Called on every hub heartbeat the peer survives. */
    private readonly onHeartbeat: () => void,
  ) {
    socket.on('pong', () => (this.answered = true));
  }

  /** Writes one text frame; also used for command replies, so they count against the same bound. */
  write(text: string | Buffer): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    corkForTick(this.raw);
    this.socket.send(text, textFrame);
    if (this.socket.bufferedAmount > this.maxPending) {
      this.metrics.slowConsumerDropped();
      this.socket.terminate();
    }
  }

  send(ev: OutEvent): void {
    this.write(wsFrame(ev));
  }

  sendMany(evs: readonly OutEvent[]): Promise<void> {
    return this.writeMany(evs.map(wsFrame));
  }

  /** Writes a replay's frames (of any protocol on this socket), paced by the socket draining. */
  async writeMany(frames: readonly Buffer[]): Promise<void> {
    let bytes = 0;
    for (const frame of frames) {
      if (this.socket.readyState !== WebSocket.OPEN) return;
      bytes += frame.length;
      if (bytes < replayChunkBytes) {
        this.socket.send(frame, textFrame);
        continue;
      }
      bytes = 0;
      // The callback runs once the frame is handed to the socket, or with an error once it closed.
      await new Promise<void>((resolve) => this.socket.send(frame, textFrame, () => resolve()));
    }
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
