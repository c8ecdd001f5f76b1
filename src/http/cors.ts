// Which browser origins may use Herald cross-origin: CORS for HTTP, and the same list for WebSocket
// upgrades, to which browsers apply no CORS.
import type { FastifyCorsOptions } from '@fastify/cors';
import type { FastifyRequest } from 'fastify';
import { errors } from '../errors.js';
import { tokenCookie } from './auth.js';

/**
 * No list: no CORS headers at all, and a preflight is a 404. `*`: any origin may read, but never with
 * the browser's cookies. A list: those origins only, with cookies; any other origin is never echoed.
 */
export function corsOptions(origins: readonly string[]): FastifyCorsOptions {
  if (origins.length === 0) return { origin: false };
  const any = origins.includes('*');
  return { origin: any ? '*' : [...origins], credentials: !any, exposedHeaders: ['idempotent-replayed'] };
}

/**
 * preHandler: browsers apply no CORS to WebSockets, so without this any site could open a socket with
 * the user's `herald_token` cookie. The origins allowed to read /events are the ones allowed here;
 * clients that send no Origin (not browsers) and pages of Herald's own origin pass. A page allowed
 * only by `*` gets what CORS gives it over HTTP, no credentials: its cookie is not read as a token
 * (a `?token=` still is).
 */
export function originCheck(allowed: readonly string[]) {
  const any = allowed.includes('*');
  const sameOrigin = (origin: string, host: string | undefined) => {
    try {
      return new URL(origin).host === host;
    } catch {
      return false;
    }
  };
  return async (request: FastifyRequest): Promise<void> => {
    const origin = request.headers.origin;
    if (origin === undefined || allowed.includes(origin) || sameOrigin(origin, request.headers.host)) return;
    if (!any) throw errors.originForbidden(origin);
    delete request.cookies[tokenCookie];
  };
}
