// The one catalogue of the errors Herald answers, over HTTP and in WebSocket error replies. Each has a
// stable `code` a client may branch on (messages are for people and may be reworded); the README's
// Errors section lists every code, and a test keeps the two the same. src/http/errors.ts sends them.
import { STATUS_CODES } from 'node:http';
import { topicRefusal } from './domain/topics.js';

/**
 * Every code, with the HTTP status it is always answered with. `client_error` is the one without a
 * status of its own: it passes on a refusal no other code names, made by Fastify or a plugin (such as
 * a 416 for a Range past the end of a static file), with that refusal's status.
 */
export const errorCodes = {
  // The request itself
  route_not_found: 404,
  url_invalid: 400,
  url_param_too_long: 414,
  upgrade_required: 426,
  request_malformed: 400,
  request_timeout: 408,
  headers_too_large: 431,
  client_error: '4xx',
  // Credentials and permissions
  token_missing: 401,
  token_invalid: 401,
  token_not_subscriber: 403,
  token_user_invalid: 403,
  token_topics_invalid: 403,
  topic_forbidden: 403,
  publisher_credential_missing: 401,
  publisher_credential_invalid: 401,
  token_not_publisher: 403,
  metrics_token_required: 401,
  origin_forbidden: 403,
  pusher_signature_invalid: 401,
  // Bodies and WebSocket messages
  content_type_unsupported: 415,
  charset_unsupported: 415,
  body_too_large: 413,
  body_empty: 400,
  body_not_utf8: 400,
  json_invalid: 400,
  json_not_strict: 400,
  validation_failed: 400,
  message_not_text: 400,
  command_unknown: 400,
  // What a request asks for
  notification_not_found: 404,
  pusher_app_not_found: 404,
  idempotency_conflict: 422,
  stream_already_started: 409,
  too_many_topics: 400,
  webhook_delivery_not_found: 404,
  // Limits
  publish_rate_limited: 429,
  too_many_streams: 429,
  resume_rate_limited: 429,
  too_many_connections: 429,
  connection_limit: 503,
  // The server
  not_ready: 503,
  shutting_down: 503,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof errorCodes;
/** The codes answered with one fixed status (all but `client_error`). */
export type FixedCode = { [C in ErrorCode]: (typeof errorCodes)[C] extends number ? C : never }[ErrorCode];

export class HeraldError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly statusCode: number,
    message: string,
    readonly options: {
      /** When the client may try again: sent as `Retry-After` over HTTP. */
      retryAfterSeconds?: number;
      /** Fields the body carries besides the usual four. */
      extra?: Record<string, unknown>;
    } = {},
  ) {
    super(message);
    this.name = 'HeraldError';
  }
}

/** An error with a fixed code, its status taken from the catalogue. */
export function heraldError(code: FixedCode, message: string, options?: HeraldError['options']): HeraldError {
  return new HeraldError(code, errorCodes[code], message, options);
}

export interface ErrorBody {
  statusCode: number;
  code: ErrorCode;
  error: string;
  message: string;
}

/** The one shape of every error Herald answers, over HTTP and in WebSocket error replies. */
export function errorBody(err: HeraldError): ErrorBody {
  const { statusCode, code, message } = err;
  // The extra fields first, so none can replace one of the four.
  return { ...err.options.extra, statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message };
}

/** The errors Herald raises itself, by what went wrong; Fastify's own are mapped in src/http/errors.ts. */
export const errors = {
  routeNotFound: (method: string, path: string) => heraldError('route_not_found', `no route for ${method} ${path}`),
  upgradeRequired: () => heraldError('upgrade_required', 'this is a WebSocket endpoint: connect with Upgrade: websocket'),
  // node:http's refusals, in the words Fastify's default handler of them used.
  requestMalformed: () => heraldError('request_malformed', 'Client Error'),
  requestTimeout: () => heraldError('request_timeout', 'Client Timeout'),
  headersTooLarge: () => heraldError('headers_too_large', 'Exceeded maximum allowed HTTP header size'),

  tokenMissing: () => heraldError('token_missing', 'a subscriber token is required (Authorization: Bearer, ?token= or cookie)'),
  tokenInvalid: () => heraldError('token_invalid', 'the token is invalid or expired'),
  tokenNotSubscriber: () =>
    heraldError('token_not_subscriber', 'a publish token cannot subscribe or read notifications: use a token without the publish scope'),
  tokenUserInvalid: () => heraldError('token_user_invalid', 'the token names no valid user (sub claim)'),
  tokenTopicsInvalid: (problem: string) => heraldError('token_topics_invalid', problem),
  topicForbidden: (topic: string) => heraldError('topic_forbidden', topicRefusal(topic)),
  publisherCredentialMissing: () => heraldError('publisher_credential_missing', 'a publisher key or token is required (Authorization: Bearer)'),
  publisherCredentialInvalid: () => heraldError('publisher_credential_invalid', 'the publisher key or token is invalid or expired'),
  tokenNotPublisher: () => heraldError('token_not_publisher', 'the token has no publish scope'),
  metricsTokenRequired: () => heraldError('metrics_token_required', 'a metrics token is required (Authorization: Bearer)'),
  pusherSignatureInvalid: (problem: string) => heraldError('pusher_signature_invalid', `the Pusher request signature is invalid: ${problem}`),
  originForbidden: (origin: string) => heraldError('origin_forbidden', `origin ${origin} may not open a WebSocket (HERALD_CORS_ORIGINS)`),

  contentTypeUnsupported: () => heraldError('content_type_unsupported', 'request bodies must be JSON: content-type: application/json'),
  charsetUnsupported: (charset: string) =>
    heraldError('charset_unsupported', `unsupported charset "${charset}": send content-type: application/json in UTF-8`),
  bodyNotUtf8: () => heraldError('body_not_utf8', 'body is not valid UTF-8'),
  messageInvalidJson: () => heraldError('json_invalid', 'message is not valid JSON'),
  /** `problem` from `jsonProblem`: a duplicate key, an inexact number, a prototype key, too deep, a lone surrogate. */
  jsonNotStrict: (problem: string) => heraldError('json_not_strict', problem),
  validationFailed: (message: string) => heraldError('validation_failed', message),
  messageNotText: () => heraldError('message_not_text', 'messages must be text frames holding JSON'),
  commandUnknown: (types: readonly string[]) => heraldError('command_unknown', `"type" must be one of ${types.map((t) => `"${t}"`).join(', ')}`),

  pusherAppNotFound: (id: string) => heraldError('pusher_app_not_found', `no Pusher app with id "${id.slice(0, 64)}" (HERALD_PUSHER_APPS)`),
  notificationNotFound: (id: number) => heraldError('notification_not_found', `notification ${id} not found`),
  idempotencyConflict: () => heraldError('idempotency_conflict', 'this Idempotency-Key was already used for a different request'),
  streamAlreadyStarted: () =>
    heraldError('stream_already_started', 'the stream has already started: resume must be the first message (or reconnect with ?lastEventId=)'),
  webhookDeliveryNotFound: (id: string) => heraldError('webhook_delivery_not_found', `no dead webhook delivery ${id}`),
  tooManyTopics: (max: number) => heraldError('too_many_topics', `at most ${max} topics per stream`),

  publishRateLimited: (limit: number, windowMs: number, retryIn: string) =>
    heraldError('publish_rate_limited', `publish rate limit exceeded: at most ${limit} per ${windowMs} ms for this publisher; retry in ${retryIn}`),
  tooManyStreams: (max: number) => heraldError('too_many_streams', `at most ${max} open streams per user`),
  resumeRateLimited: (refusal: { message: string; retryAfterSeconds: number }) =>
    heraldError('resume_rate_limited', refusal.message, { retryAfterSeconds: refusal.retryAfterSeconds }),
  tooManyConnections: (max: number) =>
    heraldError('too_many_connections', `at most ${max} open connections per client address (HERALD_MAX_CONNECTIONS_PER_IP)`),
  connectionLimit: (max: number) => heraldError('connection_limit', `the server is at its connection limit (${max}, HERALD_MAX_CONNECTIONS); retry later`),

  notReady: (down: readonly string[], checks: Record<string, string>) =>
    heraldError('not_ready', `not ready: ${down.join(' and ')} unreachable`, { extra: { checks } }),
  // Fastify's words for it, kept.
  shuttingDown: () => heraldError('shutting_down', 'Service Unavailable'),
  internal: () => heraldError('internal_error', 'internal error'),
};
