import { existsSync } from 'node:fs';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { projectFile } from '../paths.js';

/**
 * The browser client's files (contract D), built by `packages/client` into its `dist/`. Until that
 * package is built (or while this checkout still has the hand-written client in public/), the copy
 * in public/ is served; neither: 404.
 */
const clientFiles = ['herald-client.js', 'herald-client.d.ts', 'herald-inbox.js', 'herald-inbox.d.ts'];
const clientDirs = [projectFile('packages', 'client', 'dist'), projectFile('public')];

/** `.d.ts` as TypeScript: by its `.ts` extension alone it would go out as an MPEG transport stream. */
function typescriptType(reply: FastifyReply, path: string): void {
  if (path.endsWith('.d.ts')) reply.header('content-type', 'application/typescript; charset=utf-8');
}

/**
 * The browser side: the inbox page at `/` and `herald-client.js`, which apps may load straight from
 * Herald. The page loads nothing from elsewhere and runs no inline script, so a strict policy holds.
 */
const contentSecurityPolicy = [
  "default-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export async function pageRoutes(app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, {
    root: projectFile('public'),
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
      const dir = clientDirs.find((d) => existsSync(`${d}/${name}`));
      return dir === undefined ? reply.callNotFound() : reply.sendFile(name, dir);
    });
  }
}
