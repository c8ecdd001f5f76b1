// Caps on open connections, in total and per client address, counted from the TCP accept to the close:
// a stream (SSE, detached from node:http, or an upgraded WebSocket) holds its connection for its life.
import type { Server } from 'node:http';
import { isIPv4, type Socket } from 'node:net';
import type { ConnectionsConfig } from '../config.js';
import { releaseFromHttp } from './detach.js';
import { errors, type HeraldError } from '../errors.js';
import { rawErrorResponse } from './errors.js';

/** How long a refused connection is kept to read the client's request and answer it. */
const refusalLingerMs = 2000;
/** What a refused client may send before it is cut: a request head, and then some. */
const refusalReadBytes = 64 * 1024;

/**
 * The address limits are counted by: an IPv4 address, or the /64 an IPv6 address is in, since one
 * client (a home, a phone) is given a whole /64 and could otherwise use a fresh address per connection.
 */
export function clientKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (isIPv4(address)) return address;
  const [head = '', tail] = address.split('%')[0]!.split('::');
  const groups = (s: string | undefined) => (s ? s.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  const before = groups(head);
  const after = groups(tail);
  const all = tail === undefined ? before : [...before, ...Array<string>(8 - before.length - after.length).fill('0'), ...after];
  return `${all.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}

/**
 * Answers `refusal` on a connection over a cap, and closes it. Written by hand on the socket
 * because no request has been parsed yet (nor will be: the socket is taken out of node:http first,
 * so nothing it sends reaches a route). The answer waits for the client's request, and what the
 * client sends is read and dropped until it closes: closing on unread data would reset the
 * connection, and the client might lose the answer.
 */
function refuse(socket: Socket, refusal: HeraldError): void {
  if (!releaseFromHttp(socket)) return void socket.destroy();
  const answer = rawErrorResponse(refusal);
  let read = 0;
  const timer = setTimeout(() => socket.destroy(), refusalLingerMs);
  socket.once('close', () => clearTimeout(timer));
  socket.on('error', () => {});
  // Once both sides have ended, the socket closes by itself; a client that sent nothing gets nothing.
  socket.on('end', () => read === 0 && socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    if (read === 0) socket.end(answer);
    read += chunk.length;
    if (read > refusalReadBytes) socket.destroy();
  });
}

/** Counts `server`'s connections until they close, and refuses those over `limits`. */
export function limitConnections(server: Server, limits: ConnectionsConfig): void {
  if (limits.max === 0 && limits.perIp === 0) return;
  let open = 0;
  const perIp = new Map<string, number>();
  // After node:http's own listener (added when the server was made), so refuse() finds its parser.
  server.on('connection', (socket: Socket) => {
    if (socket.remoteAddress === undefined) return void socket.destroy(); // already gone
    const key = clientKey(socket.remoteAddress);
    const fromKey = perIp.get(key) ?? 0;
    if (limits.max > 0 && open >= limits.max) {
      return refuse(socket, errors.connectionLimit(limits.max));
    }
    if (limits.perIp > 0 && fromKey >= limits.perIp) {
      return refuse(socket, errors.tooManyConnections(limits.perIp));
    }
    open++;
    perIp.set(key, fromKey + 1);
    socket.once('close', () => {
      open--;
      const left = perIp.get(key)! - 1;
      if (left === 0) perIp.delete(key);
      else perIp.set(key, left);
    });
  });
}
