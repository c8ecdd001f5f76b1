import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

/**
 * Deepest JSON a request body may be. Parsing is iterative, but JSON.stringify, ajv and the response
 * serialiser recurse: a 5,000-level `data` would overflow the stack there and answer 500.
 */
export const maxJsonDepth = 32;

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** A UTF-16 surrogate on its own (with the `u` flag, a well-formed pair is one code point and never matches). */
const loneSurrogate = /\p{Cs}/u;

export function isWellFormed(s: string): boolean {
  return !loneSurrogate.test(s);
}

function badRequest(message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode: 400 });
}

/**
 * Walks a parsed body without recursion: refuses nesting past `maxJsonDepth` and strings (values or
 * keys) that SQLite and UTF-8 output could only store as U+FFFD, i.e. silently corrupted.
 */
function checkParsed(root: unknown): void {
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (typeof value === 'string') {
      if (!isWellFormed(value)) throw badRequest('body contains a lone UTF-16 surrogate: strings must be well-formed Unicode');
    } else if (typeof value === 'object' && value !== null) {
      if (depth > maxJsonDepth) throw badRequest(`body is nested more than ${maxJsonDepth} levels deep`);
      if (Array.isArray(value)) {
        for (const v of value) stack.push([v, depth + 1]);
      } else {
        for (const [k, v] of Object.entries(value)) {
          if (!isWellFormed(k)) throw badRequest('body contains a lone UTF-16 surrogate: strings must be well-formed Unicode');
          stack.push([v, depth + 1]);
        }
      }
    }
  }
}

/**
 * Strict request bodies for every route: JSON only (anything else is 415), valid UTF-8 (invalid bytes
 * are refused rather than replaced by U+FFFD), at most `maxJsonDepth` deep, with well-formed strings.
 * (Types are checked without coercion by src/validation.ts.)
 */
export const jsonBodyPlugin = fp(async (app: FastifyInstance) => {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request: FastifyRequest, raw: Buffer, done) => {
    const charset = /;\s*charset="?([^";\s]+)/i.exec(request.headers['content-type'] ?? '')?.[1];
    if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
      return done(Object.assign(new Error(`unsupported charset "${charset}": send content-type: application/json in UTF-8`), { statusCode: 415 }));
    }
    let text: string;
    try {
      text = utf8.decode(raw);
    } catch {
      return done(badRequest('body is not valid UTF-8'));
    }
    parseJson(request, text, (err, body) => {
      if (err) return done(err);
      try {
        checkParsed(body);
      } catch (e) {
        return done(e as Error);
      }
      done(null, body);
    });
  });
});
