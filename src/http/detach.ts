// Takes an SSE connection out of node:http once the stream's head is written, as node:http itself does
// for a WebSocket upgrade. Written by hand because no library does it: an event stream's response
// never ends, so node:http (and Fastify above it) would otherwise keep the connection's whole request
// machinery for the stream's lifetime: the HTTP parser and its native buffers, the IncomingMessage
// with every header, the ServerResponse, Fastify's request, reply and child logger, and node:http's
// listeners. Held 20,000 times, that was most of a stream's memory; what is left is the socket.
// connections.ts uses the same release on a connection it refuses, before node:http reads a request.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { freeParser } from '_http_common';

/**
 * The listeners node:http puts on a server socket (`connectionListenerInternal` in Node's
 * lib/_http_server.js), by event: the same ones it removes when it hands a socket to an upgrade.
 */
const httpListeners = [
  ['data', 'bound socketOnData'],
  ['end', 'bound socketOnEnd'],
  ['close', 'bound socketOnClose'],
  ['drain', 'bound socketOnDrain'],
  ['error', 'socketOnError'],
  ['timeout', 'socketOnTimeout'],
  ['resume', 'onSocketResume'],
  ['pause', 'onSocketPause'],
] as const;

type Listener = (...args: unknown[]) => void;

interface HttpSocket extends Socket {
  parser?: object | null;
}

/** The client of a stream sends nothing after its request; reading on is what notices it leave. */
function ignore(): void {}

/** The client half-closed: the stream has nobody to go to (server sockets of node:http allow half-open). */
function peerEnded(this: Socket): void {
  this.destroy();
}

/**
 * Takes `socket` out of node:http: its listeners and its HTTP parser go, so node:http neither reads
 * nor answers anything on it any more. Returns false, changing nothing, on a node:http whose sockets
 * do not look as expected (another Node version).
 */
export function releaseFromHttp(socket: Socket): boolean {
  const parser = (socket as HttpSocket).parser;
  if (!parser || socket.destroyed) return false;
  const found = httpListeners.map(
    ([event, name]) => [event, socket.listeners(event).find((l) => l.name === name) as Listener | undefined] as const,
  );
  if (found.some(([, listener]) => listener === undefined)) return false;
  for (const [event, listener] of found) socket.off(event, listener as Listener);
  freeParser(parser, null, socket);
  return true;
}

/**
 * Hands `res`'s socket over from node:http and returns it, once the head and everything written so
 * far is on it: from here, writes go to the socket itself, and nothing of the request is kept.
 * Returns null, leaving the response as it was, where `releaseFromHttp` cannot: the stream then
 * works as before, only with more memory per stream.
 */
export function detachFromHttp(res: ServerResponse): Socket | null {
  const socket = res.socket;
  if (!socket || !releaseFromHttp(socket)) return null;
  res.detachSocket(socket);
  socket.on('data', ignore);
  socket.on('end', peerEnded);
  // Errors end in 'close', which the stream listens to; without a listener one would crash the process.
  socket.on('error', ignore);
  return socket;
}
