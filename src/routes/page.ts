import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { projectFile } from '../paths.js';

/**
 * The browser side: the demo page at `/`, and the built @herald/client (`herald-client.js`,
 * `herald-inbox.js`), which apps may load straight from Herald. The page runs no inline script and
 * loads only images from elsewhere (notification avatars and icons), so a strict policy holds.
 */
const contentSecurityPolicy = [
  "default-src 'self'",
  "img-src 'self' data: https:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export async function pageRoutes(app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, {
    root: [projectFile('public'), projectFile('packages', 'client', 'dist')],
    // Routes for the files that exist, not a catch-all: unknown paths keep the JSON 404.
    wildcard: false,
    // The page and the client change with each release; revalidating is cheap next to a stale client.
    cacheControl: true,
    maxAge: 0,
    setHeaders: (reply) => {
      reply.headers({
        'content-security-policy': contentSecurityPolicy,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
      });
    },
  });
}
