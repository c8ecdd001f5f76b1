import { existsSync } from 'node:fs';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { projectFile } from '../paths.js';

/**
 * The browser client's files (contract D), built by `packages/client` into its `dist/` (at `npm ci`);
 * not built: 404.
 */
const clientFiles = ['herald-client.js', 'herald-client.d.ts', 'herald-inbox.js', 'herald-inbox.d.ts'];
const clientDir = projectFile('packages', 'client', 'dist');

/** `.d.ts` as TypeScript: by its `.ts` extension alone it would go out as an MPEG transport stream. */
function typescriptType(reply: FastifyReply, path: string): void {
  if (path.endsWith('.d.ts')) reply.header('content-type', 'application/typescript; charset=utf-8');
}

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
    // Served by the routes below, from the client package's build when there is one.
    globIgnore: clientFiles,
    setHeaders: (reply, path) => {
      reply.headers({
        'content-security-policy': contentSecurityPolicy,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
      });
      typescriptType(reply, path);
    },
  });
  for (const name of clientFiles) {
    // Looked up per request: a client built while Herald runs is served without a restart.
    app.get(`/${name}`, { schema: { hide: true } }, (_request, reply) => {
      return existsSync(`${clientDir}/${name}`) ? reply.sendFile(name, clientDir) : reply.callNotFound();
    });
  }
}
