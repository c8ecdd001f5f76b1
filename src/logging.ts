import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyServerOptions } from 'fastify';

/** Query parameters that carry credentials (a browser's EventSource can only send its token this way). */
const secretParams = ['token'];

/**
 * The URL as it may be logged: credential parameters replaced. Keys are compared decoded, as the
 * querystring parser reads them, so `?%74oken=` is redacted too.
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  if (!secretParams.some((p) => params.has(p))) return url;
  for (const p of secretParams) if (params.has(p)) params.set(p, '[redacted]');
  return `${url.slice(0, q)}?${params.toString()}`;
}

/** A caller's X-Request-ID when it is a plain identifier, so a proxy's id follows the request into our logs. */
const requestIdPattern = /^[\w.:@-]{1,128}$/;

/** What Fastify logs about a request: pino's usual fields, with the URL redacted. */
interface LoggedRequest {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number };
}

/**
 * Structured JSON logs with a request id on every line of a request; no credential in any line:
 * header and cookie values are redacted by path, the query's token by the request serializer.
 */
export function loggingOptions(level: string): Pick<FastifyServerOptions, 'logger' | 'genReqId' | 'requestIdHeader'> {
  return {
    logger: {
      level,
      redact: ['req.headers.authorization', 'req.headers.cookie'],
      serializers: {
        req: (req: LoggedRequest) => ({
          method: req.method,
          url: req.url === undefined ? undefined : redactUrl(req.url),
          host: req.host,
          remoteAddress: req.ip,
          remotePort: req.socket?.remotePort,
        }),
      },
    },
    requestIdHeader: false,
    genReqId: (req: IncomingMessage) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && requestIdPattern.test(given) ? given : randomUUID();
    },
  };
}
