import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyServerOptions } from 'fastify';
import pinoPretty from 'pino-pretty';
import { redactUrl } from './auth.js';

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
 * Structured logs with a request id on every line of a request; no credential in any line: header
 * and cookie values are redacted by path, the query's token and anything like a JWT in the URL by the
 * request serializer. `pretty` formats the same records for a terminal (synchronously, in this
 * thread, so the last lines before an exit are not lost); `json` writes them as they are.
 */
export function loggingOptions(level: string, format: 'pretty' | 'json'): Pick<FastifyServerOptions, 'logger' | 'genReqId' | 'requestIdHeader'> {
  return {
    logger: {
      level,
      ...(format === 'pretty' ? { stream: pinoPretty({ sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }) } : {}),
      redact: ['req.headers.authorization', 'req.headers.cookie'],
      serializers: {
        req: (req: LoggedRequest) => ({
          method: req.method,
          url: redactUrl(req.url),
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
