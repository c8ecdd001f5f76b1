// WebSocket as a client sees it: a real `ws` client on /ws, and refused upgrades.
import { WebSocket } from 'ws';
import type { Json } from './http.js';
import { Received } from './received.js';
import type { Server } from './server.js';
import { tokenFor } from './tokens.js';

/** A real WebSocket client (the `ws` package) on /ws that records every frame the server sends. */
export class WsClient {
  private readonly received = new Received<Json>((frames) => JSON.stringify(frames));
  readonly frames = this.received.items;
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  /** Resolves with the close code and reason once the socket is closed, by either side. */
  readonly closed: Promise<{ code: number; reason: string }>;
  private nextRef = 1;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.ws = new WebSocket(url, { headers });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    this.closed = new Promise((resolve) => this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    // A close the test asked for still emits 'error' on some paths (e.g. the server cut the socket).
    this.ws.on('error', () => {});
    this.ws.on('message', (data) => {
      this.received.push(JSON.parse(String(data)));
    });
  }

  of(event: string): Json[] {
    return this.frames.filter((f) => f.event === event);
  }

  /** Ids of the notification frames received, in order. */
  ids(): number[] {
    return this.of('notification').map((f) => f.id as number);
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Sends a command with a fresh `ref` and resolves with the reply or error frame that carries it. */
  async command(type: string, args: Record<string, unknown> = {}, ms = 5000): Promise<Json> {
    const ref = `r${this.nextRef++}`;
    this.send({ type, ref, ...args });
    await this.waitFor((f) => f.some((x) => x.ref === ref), ms);
    return this.frames.find((x) => x.ref === ref);
  }

  /** Resolves when `pred` holds over the frames so far; rejects after `ms`. */
  waitFor(pred: (frames: Json[]) => boolean, ms = 5000): Promise<void> {
    return this.received.waitFor(pred, ms);
  }

  close(): void {
    this.ws.close();
  }
}

/** The WebSocket URL of a server's /ws with a query string. */
export const wsUrl = (server: Server, query = '') => `${server.url.replace(/^http/, 'ws')}/ws${query}`;

/** Opens /ws as `user` (token, with `claims`, in the Authorization header) and waits for the upgrade. */
export async function wsConnect(server: Server, user: string, query = '', claims: Record<string, unknown> = {}): Promise<WsClient> {
  const c = new WsClient(wsUrl(server, query), { authorization: `Bearer ${tokenFor(user, claims)}` });
  await c.opened;
  return c;
}

/** Tries to open /ws and expects a refusal: resolves with the HTTP status and JSON body instead of a socket. */
export function wsRefusal(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => {
      ws.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
  });
}
