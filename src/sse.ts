// Server-Sent Events framing (https://html.spec.whatwg.org/multipage/server-sent-events.html).
// Written by hand because it is a few lines and sits on the hot path of every delivery.

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
