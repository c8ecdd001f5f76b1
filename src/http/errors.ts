import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';

export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
}

/** The one shape of every error Herald answers, over HTTP and in WebSocket error replies. */
export function errorBody(statusCode: number, message: string): ErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message };
}

export function sendError(reply: FastifyReply, statusCode: number, message: string): FastifyReply {
  return reply.code(statusCode).send(errorBody(statusCode, message));
}

function describeValidation(err: FastifyError, body: unknown): string {
  const v = err.validation?.[0];
  // Every object-level keyword (required, oneOf) passes or fails oddly on an array or a scalar: say the real problem.
  if (err.validationContext === 'body' && (typeof body !== 'object' || body === null || Array.isArray(body))) {
    return 'body must be a JSON object';
  }
  // ajv's own words for a failed oneOf ("must match exactly one schema") do not tell a publisher what to fix.
  if (err.validationContext === 'body' && v?.schemaPath.startsWith('#/oneOf')) {
    return 'body must name exactly one target: "user", "users", "topic" or "broadcast": true';
  }
  if (v?.keyword === 'additionalProperties') {
    return `${err.validationContext} has an unknown field "${String(v.params.additionalProperty)}"`;
  }
  return err.message;
}

export const errorsPlugin = fp(async (app: FastifyInstance) => {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err.validation) return sendError(reply, 400, describeValidation(err, request.body));
    // Fastify's own words name neither the content type sent nor the one expected.
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return sendError(reply, 415, 'request bodies must be JSON: content-type: application/json');
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) return sendError(reply, status, err.message);
    request.log.error({ err }, 'request failed');
    return sendError(reply, 500, 'internal error');
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, 404, `no route for ${request.method} ${request.url.split('?')[0]}`));
});
