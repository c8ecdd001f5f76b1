// Takes an SSE connection out of node:http once the stream's head is written, as node:http itself does
// for a WebSocket upgrade. Written by hand because no library does it: an event stream's response
// never ends, so node:http (and Fastify above it) would otherwise keep the connection's whole request
// machinery for the stream's lifetime: the HTTP parser and its native buffers, the IncomingMessage
// with every header, the ServerResponse, Fastify's request, reply and child logger, and node:http's
// listeners. Held 20,000 times, that was most of a stream's memory; what is left is the socket.
// connections.ts uses the same release on a connection it refuses, before node:http reads a request.
// A WebSocket's upgrade is released here too, from what @fastify/websocket keeps (`releaseUpgrade`).
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
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

/**
 * A WebSocket's errors are its client's (oversize or malformed frames, abrupt disconnects); `ws` has
 * already begun closing for protocol errors, so only a socket still open is cut.
 */
export function onWebSocketError(err: Error, socket: WebSocket, log: FastifyBaseLogger): void {
  log.warn({ err }, 'websocket error');
  if (socket.readyState === socket.OPEN) socket.terminate();
}

/**
 * Lets go of everything of an upgraded request but its TCP socket, which it returns: called first in
 * every `wsHandler`, whose session copies out what it needs. @fastify/websocket keeps two things for
 * the socket's life otherwise: the ServerResponse it routed the upgrade with stays the TCP socket's
 * (node:http's `_httpMessage`, with the IncomingMessage and its headers), and the 'error' listener it
 * puts on the WebSocket holds the Fastify request and reply. That listener, the only one on a socket
 * just opened, is replaced with one that holds the logger alone.
 */
export function releaseUpgrade(socket: WebSocket, request: FastifyRequest): Socket {
  const raw = request.raw.socket;
  (raw as Socket & { _httpMessage?: ServerResponse | null })._httpMessage?.detachSocket(raw);
  const log = request.log;
  socket.removeAllListeners('error');
  socket.on('error', (err) => onWebSocketError(err, socket, log));
  return raw;
}
