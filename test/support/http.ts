// Plain HTTP and TCP clients for any Herald (in-process or spawned): exact bytes, status and headers.
import http from 'node:http';
import net from 'node:net';
import { publisherKey, tokenFor } from './tokens.js';

// Response bodies and event payloads are arbitrary JSON that each test asserts on field by field;
// a type for them would only restate those assertions.
export type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Everything received until `ms` passed or the server ended the response. */
  text: string;
}

/** A raw HTTP GET that reads for at most `ms`: to see exact SSE bytes and headers, or error bodies. */
export function rawGet(url: string, headers: Record<string, string> = {}, ms = 500): Promise<RawResponse> {
  return rawRequest('GET', url, headers, undefined, ms);
}

/**
 * Any raw HTTP request, reading the answer for at most `ms`: sends bytes exactly as given (invalid
 * UTF-8, odd content types) and reads streams and errors alike.
 */
export function rawRequest(method: string, url: string, headers: Record<string, string>, body?: string | Buffer, ms = 500): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    // Node sends a DELETE body without framing unless told its length.
    const framing = body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) };
    // A fresh connection each time: a kept-alive one the server closed after an error would reset the next request.
    const req = http.request(url, { method, headers: { ...framing, ...headers }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      const done = () => {
        clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text });
      };
      const timer = setTimeout(done, ms);
      res.on('end', done);
      res.on('close', done);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface RawConnection {
  socket: net.Socket;
  /** Resolves when the connection closed, by either side. */
  closed: Promise<void>;
  /** Everything received so far. */
  text: () => string;
}

/** A raw TCP connection to `url`'s port, from `localAddress` if given (any 127.x.y.z): bytes exactly as written, and exactly as received. */
export async function rawConnection(url: string, localAddress?: string): Promise<RawConnection> {
  const { port } = new URL(url);
  const socket = net.connect({ port: Number(port), host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (text += d));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  return { socket, closed, text: () => text };
}

/** POST /notifications as the publisher to any Herald (a spawned one too); resolves with status and JSON body. */
export async function publishTo(url: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${url}/notifications`, {
    method: 'POST',
    headers: { authorization: `Bearer ${publisherKey}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/** The ids of `user`'s newest notifications (one history page of up to 200), newest first; `claims` go in the token. */
export async function historyIds(url: string, user: string, query = '', claims: Record<string, unknown> = {}): Promise<number[]> {
  const res = await fetch(`${url}/notifications?limit=200${query}`, { headers: { authorization: `Bearer ${tokenFor(user, claims)}` } });
  return ((await res.json()) as { items: { id: number }[] }).items.map((n) => n.id);
}
