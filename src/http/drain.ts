import type { IncomingMessage } from 'node:http';
import type { FastifyReply } from 'fastify';

/** The most of an unread body dropped after an early answer, and for how long, before the connection is cut. */
const drainBytes = 16 * 1024 * 1024;
const drainMs = 5000;

/**
 * For an answer sent before its request's body was read: a 401 from the publisher check, a 413 over
 * HERALD_BODY_LIMIT. Closing the connection at once (what Fastify asks for after a body error) would
 * close it on unread data, which resets it, and a client still sending its body would see the reset,
 * not the answer. Instead the rest of the body is read and dropped, never buffered, up to `drainBytes`
 * and `drainMs`; a body that ends within them leaves the connection fit for the next request, a
 * larger or slower one is cut.
 */
export function drainUnreadBody(request: IncomingMessage, reply: FastifyReply): void {
  reply.removeHeader('connection');
  const socket = request.socket;
  let read = 0;
  const timer = setTimeout(() => socket.destroy(), drainMs);
  const count = (chunk: Buffer) => {
    read += chunk.length;
    if (read > drainBytes) socket.destroy();
  };
  const done = () => {
    clearTimeout(timer);
    request.off('data', count);
    socket.off('close', done);
  };
  request.on('data', count);
  request.once('end', done);
  socket.once('close', done);
}
