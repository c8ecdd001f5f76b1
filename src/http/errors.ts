// How the catalogue's errors (src/errors.ts) are answered over HTTP: one idiom, `throw` a HeraldError
// from a hook, a handler or a body parser, and the error handler here sends it. Fastify's and
// node:http's own refusals are mapped onto the catalogue too, so every error body carries a code.
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import fp from 'fastify-plugin';
import { errorBody, errors, heraldError, HeraldError, type FixedCode } from '../errors.js';
import { patternMeaning } from '../schemas.js';

function sendError(reply: FastifyReply, err: HeraldError): FastifyReply {
  if (err.options.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.options.retryAfterSeconds));
  return reply.code(err.statusCode).send(errorBody(err));
}

/**
 * `err` as a whole HTTP/1.1 response, for a socket no route answers (over a connection cap, or one
 * node:http could not parse a request from). The connection is closed after it.
 */
export function rawErrorResponse(err: HeraldError): string {
  const body = JSON.stringify(errorBody(err));
  return (
    `HTTP/1.1 ${err.statusCode} ${STATUS_CODES[err.statusCode]}\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
  );
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
    return `${err.validationContext}${v.instancePath} has an unknown field "${String(v.params.additionalProperty)}"`;
  }
  const meaning = v?.keyword === 'pattern' ? patternMeaning[String(v.params.pattern)] : undefined;
  if (meaning !== undefined) return `${err.validationContext}${v!.instancePath} ${meaning}`;
  return err.message;
}

/** Fastify's refusals by their code, and the catalogue's code for each; Fastify's message is kept. */
const fastifyCodes = new Map<string, FixedCode>([
  ['FST_ERR_CTP_BODY_TOO_LARGE', 'body_too_large'],
  ['FST_ERR_CTP_EMPTY_JSON_BODY', 'body_empty'],
  ['FST_ERR_CTP_INVALID_JSON_BODY', 'json_invalid'],
  ['FST_ERR_BAD_URL', 'url_invalid'],
  ['FST_ERR_MAX_PARAM_LENGTH', 'url_param_too_long'],
]);

/** What a request failed with, as a catalogue error. Only an error that is not the client's is logged. */
function asHeraldError(err: FastifyError, request: FastifyRequest): HeraldError {
  if (err instanceof HeraldError) return err;
  if (err.validation) return errors.validationFailed(describeValidation(err, request.body));
  // Fastify's own words name neither the content type sent nor the one expected.
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return errors.contentTypeUnsupported();
  const code = fastifyCodes.get(err.code);
  if (code !== undefined) return heraldError(code, err.message);
  const status = err.statusCode ?? 500;
  if (status >= 400 && status < 500) return new HeraldError('client_error', status, err.message);
  request.log.error({ err }, 'request failed');
  return errors.internal();
}

/**
 * node:http's refusal of a connection it could not read a request from: a request not sent whole in
 * time, headers too large, bytes that are not HTTP. Fastify's default handler, with the body in the
 * catalogue's shape.
 */
function clientErrorHandler(this: FastifyInstance, err: Error & { code?: string }, socket: Socket): void {
  // A reset connection is gone: there is no one to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const refusal =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? errors.requestTimeout()
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? errors.headersTooLarge()
        : errors.requestMalformed();
  this.log.trace({ err }, `client error: ${refusal.code}`);
  if (socket.writable) socket.write(rawErrorResponse(refusal));
  socket.destroy(err);
}

/**
 * Options for `Fastify()`: refusals made before any route or hook runs (a malformed URL, a request
 * node:http could not parse) in the catalogue's shape. `return503OnClosing` is off because Fastify's
 * own 503 has no code: app.ts refuses requests that arrive during shutdown itself.
 */
export const errorServerOptions = {
  clientErrorHandler,
  frameworkErrors: (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => void sendError(reply, asHeraldError(err, request)),
  return503OnClosing: false,
} satisfies FastifyServerOptions;

export const errorsPlugin = fp(async (app: FastifyInstance) => {
  app.setErrorHandler((err: FastifyError, request, reply) => sendError(reply, asHeraldError(err, request)));
  app.setNotFoundHandler((request, reply) => sendError(reply, errors.routeNotFound(request.method, request.url.split('?')[0]!)));
});
