import { createHash, timingSafeEqual } from 'node:crypto';
import cookie from '@fastify/cookie';
import jwt from '@fastify/jwt';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { AuthConfig } from '../config.js';
import { isWellFormed } from './json-body.js';
import { errors } from '../errors.js';
import { userIdSchema } from '../schemas.js';
import { parseTopicsClaim, TopicAccess } from '../domain/topics.js';

/** The auth settings with the secrets as resolved: configured, or generated and kept in the data dir. */
export interface AuthOptions extends AuthConfig {
  jwtSecret: string;
  publisherKey: string;
}

/** Name of the cookie a browser may carry its token in (EventSource cannot set headers). */
export const tokenCookie = 'herald_token';

/** A query key as the querystring parser reads it: `%74oken` is `token` too. */
function decodedKey(key: string): string {
  try {
    return decodeURIComponent(key.replace(/\+/g, ' ')).toLowerCase();
  } catch {
    return key.toLowerCase();
  }
}

/**
 * Anything shaped like a JWT: three base64url parts, the header starting `eyJ` (`{"`), with dots that
 * may be percent-encoded. It is a credential whatever parameter or path segment carries it.
 */
const jwtLike = /eyJ[\w-]*(?:\.|%2e)[\w-]*(?:\.|%2e)[\w-]*/gi;

/**
 * Query parameters that are credentials: a browser's EventSource cannot send headers, so `?token=`;
 * and a Pusher HTTP API request's `auth_signature`, which would let whoever reads the log send that
 * same request again within its 600 s window.
 */
const credentialParams = new Set(['token', 'auth_signature']);

/**
 * A URL as it may be logged: a credential parameter is blanked, and so is anything that looks like a
 * JWT anywhere in the URL (`?access_token=`, a path).
 */
export function redactUrl(url: string | undefined): string | undefined {
  return url
    ?.replace(/([?&])([^=&#]*)=([^&#]*)/g, (param: string, sep: string, key: string) =>
      credentialParams.has(decodedKey(key)) ? `${sep}${key}=[redacted]` : param,
    )
    .replace(jwtLike, '[redacted]');
}

interface Claims {
  sub?: unknown;
  scope?: unknown;
  topics?: unknown;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler: the caller is a subscriber; sets `request.userId` and `request.topicAccess`. */
    requireUser: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
    /** preHandler after `requireUser`: every topic the query names (`?topic=`) is one the caller may read. */
    requireTopics: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
    /** onRequest (headers only, so before any body is read): the caller may publish; sets `request.publisherId`. */
    requirePublisher: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  }
  interface FastifyRequest {
    userId: string;
    /** The topics a subscriber may read (its token's `topics` claim and HERALD_PUBLIC_TOPICS); null until `requireUser`. */
    topicAccess: TopicAccess | null;
    publisherId: string;
  }
}

/** The topics the caller may read. Only behind `requireUser`, which sets them; elsewhere a bug, not a refusal. */
export function topicAccessOf(request: FastifyRequest): TopicAccess {
  if (request.topicAccess === null) throw new Error('topicAccessOf: requireUser has not run on this request');
  return request.topicAccess;
}

export function bearer(request: FastifyRequest): string | undefined {
  const h = request.headers.authorization;
  const m = h === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

const userIdPattern = new RegExp(userIdSchema.pattern, 'u');

/** A `sub` claim Herald can use as a user id: the same rules as a publisher's `user` field. */
function isUserId(sub: unknown): sub is string {
  return typeof sub === 'string' && sub.length <= userIdSchema.maxLength && userIdPattern.test(sub) && isWellFormed(sub);
}

/** A token's kind follows from its scope: with `publish` it is a publisher's, else a subscriber's. */
function scopes(claims: Claims): string[] {
  if (typeof claims.scope === 'string') return claims.scope.split(' ');
  if (Array.isArray(claims.scope)) return claims.scope.filter((s): s is string => typeof s === 'string');
  return [];
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Compares digests so neither the key's content nor its length leaks through timing. */
export function sameSecret(a: string, b: string): boolean {
  return sameDigest(a, digest(b));
}

function sameDigest(a: string, bDigest: Buffer): boolean {
  return timingSafeEqual(digest(a), bDigest);
}

export const authPlugin = fp(async (app: FastifyInstance, opts: AuthOptions) => {
  await app.register(cookie);
  await app.register(jwt, {
    secret: opts.jwtSecret,
    // Only HS256: "alg: none" and algorithm-confusion tokens fail verification.
    // With an audience configured, a token without `aud` is refused too, not waved through.
    verify: { algorithms: ['HS256'], ...(opts.audience ? { allowedAud: opts.audience, requiredClaims: ['aud'] } : {}) },
    sign: { algorithm: 'HS256', ...(opts.audience ? { aud: opts.audience } : {}) },
  });
  // Hashed once, not on every publish.
  const publisherKeyDigest = digest(opts.publisherKey);
  app.decorateRequest('userId', '');
  app.decorateRequest('topicAccess', null);
  app.decorateRequest('publisherId', '');

  const verify = (token: string): Claims | undefined => {
    try {
      return app.jwt.verify<Claims>(token);
    } catch {
      return undefined;
    }
  };

  app.decorate('requireUser', async (request: FastifyRequest) => {
    const q = request.query as { token?: unknown } | undefined;
    const token = bearer(request) ?? (typeof q?.token === 'string' ? q.token : undefined) ?? request.cookies[tokenCookie];
    if (!token) throw errors.tokenMissing();
    const claims = verify(token);
    if (!claims) throw errors.tokenInvalid();
    if (scopes(claims).includes('publish')) throw errors.tokenNotSubscriber();
    if (!isUserId(claims.sub)) throw errors.tokenUserInvalid();
    const topics = parseTopicsClaim(claims.topics);
    if ('problem' in topics) throw errors.tokenTopicsInvalid(topics.problem);
    request.userId = claims.sub;
    request.topicAccess = new TopicAccess([...opts.publicTopics, ...topics.patterns]);
  });

  app.decorate('requireTopics', async (request: FastifyRequest) => {
    // The route's schema has already made `topic` an array of topic names, when present.
    const named = (request.query as { topic?: string[] } | undefined)?.topic ?? [];
    const refused = topicAccessOf(request).firstRefused(named);
    if (refused !== undefined) throw errors.topicForbidden(refused);
  });

  app.decorate('requirePublisher', async (request: FastifyRequest) => {
    const token = bearer(request);
    if (!token) throw errors.publisherCredentialMissing();
    if (sameDigest(token, publisherKeyDigest)) {
      request.publisherId = 'key';
      return;
    }
    const claims = verify(token);
    if (!claims) throw errors.publisherCredentialInvalid();
    if (!scopes(claims).includes('publish')) throw errors.tokenNotPublisher();
    request.publisherId = `jwt:${typeof claims.sub === 'string' ? claims.sub : ''}`;
  });
});
