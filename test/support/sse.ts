// Server-Sent Events as a client sees them: a real EventSource, a raw stream socket, and a parser.
import { EventSource } from 'eventsource';
import { rawConnection, type Json, type RawConnection } from './http.js';
import { Received } from './received.js';
import type { Server } from './server.js';
import { tokenFor } from './tokens.js';
import { waitUntil } from './wait.js';

export interface ReceivedEvent {
  type: string;
  id: string;
  data: Json;
}

/** A real EventSource client (the `eventsource` package) that records every event it receives. */
export class SseClient {
  private readonly received = new Received<ReceivedEvent>((events) => JSON.stringify(events.map((e) => [e.type, e.id])));
  readonly events = this.received.items;
  /** The `unread` counts received, apart from `events` (they carry no id and interleave with everything). */
  readonly unread = new Received<number>((counts) => JSON.stringify(counts));
  /** Notifications and counts in the order received: what a client's badge is computed from. */
  readonly steps: ('notification' | number)[] = [];
  readonly es: EventSource;
  opened: Promise<void>;

  constructor(url: string, token: string | undefined, headers: Record<string, string> = {}) {
    this.es = new EventSource(url, {
      fetch: (input, init) =>
        fetch(input, {
          ...init,
          headers: { ...init?.headers, ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
        }),
    });
    this.opened = new Promise((resolve, reject) => {
      this.es.addEventListener('open', () => resolve(), { once: true });
      this.es.addEventListener('error', (e) => reject(new Error(`EventSource error: ${String((e as { message?: string }).message)}`)), {
        once: true,
      });
    });
    this.es.addEventListener('unread', (e) => {
      const { count } = JSON.parse(e.data) as { count: number };
      this.steps.push(count);
      this.unread.push(count);
    });
    for (const type of ['notification', 'read', 'deleted', 'reload']) {
      this.es.addEventListener(type, (e) => {
        if (type === 'notification') this.steps.push(type);
        this.received.push({ type, id: e.lastEventId, data: JSON.parse(e.data) });
      });
    }
  }

  of(type: string): ReceivedEvent[] {
    return this.events.filter((e) => e.type === type);
  }

  ids(): number[] {
    return this.of('notification').map((e) => e.data.id as number);
  }

  /** Resolves when `pred` holds over the events so far; rejects after `ms`. */
  waitFor(pred: (events: ReceivedEvent[]) => boolean, ms = 5000): Promise<void> {
    return this.received.waitFor(pred, ms);
  }

  close(): void {
    this.es.close();
  }
}

/** Opens an SSE stream as `user` (token `claims`, e.g. the topics it may read) and waits until the server has accepted it. */
export async function connect(
  server: Server,
  user: string,
  query = '',
  headers: Record<string, string> = {},
  claims: Record<string, unknown> = {},
): Promise<SseClient> {
  const c = new SseClient(`${server.url}/events${query}`, tokenFor(user, claims), headers);
  await c.opened;
  // The stream is open once headers arrive; let the server finish joining the hub before publishing.
  await new Promise((r) => setTimeout(r, 20));
  return c;
}

/**
 * An SSE stream as `user` over a raw socket, once its head has arrived: the socket, to stop reading
 * or send what a client should not; everything received so far; and when the connection closed.
 */
export async function rawStream(url: string, user: string): Promise<RawConnection> {
  const conn = await rawConnection(url);
  conn.socket.write(`GET /events HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${tokenFor(user)}\r\n\r\n`);
  await waitUntil('the stream head', () => conn.text().includes('retry:'));
  if (!conn.text().startsWith('HTTP/1.1 200')) throw new Error(`stream not opened: ${conn.text()}`);
  return conn;
}

/** Parses SSE text into events the way the spec's parser does (enough for tests). */
export function parseSse(text: string): { id?: string; event?: string; data: string }[] {
  const out: { id?: string; event?: string; data: string }[] = [];
  for (const block of text.split(/\r\n\r\n|\n\n|\r\r/)) {
    const ev: { id?: string; event?: string; data: string[] } = { data: [] };
    for (const line of block.split(/\r\n|\n|\r/)) {
      if (line === '' || line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'id') ev.id = value;
      else if (field === 'event') ev.event = value;
      else if (field === 'data') ev.data.push(value);
    }
    if (ev.data.length > 0) out.push({ ...(ev.id === undefined ? {} : { id: ev.id }), ...(ev.event === undefined ? {} : { event: ev.event }), data: ev.data.join('\n') });
  }
  return out;
}
