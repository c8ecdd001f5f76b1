// The Pusher protocol surface: the WebSocket at /app/:key (stream/pusher.ts) and the HTTP API at
// /apps/:appId/... as the official server libraries call it, publishing through the one Publisher.
import { createHash, type Hash } from 'node:crypto';
import { Transform } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { PusherConfig } from '../config.js';
import type { Publisher } from '../domain/publisher.js';
import {
  channelKind,
  channelOfTopic,
  channelSchema,
  notificationFields,
  requestSignatureProblem,
  topicOf,
  UserChannel,
  type PusherApp,
} from '../domain/pusher.js';
import { errors } from '../errors.js';
import { releaseUpgrade } from '../http/detach.js';
import { errorResponses, errorSchema } from '../schemas.js';
import { PresenceRegistry } from '../stream/pusher-presence.js';
import { pusherCode, PusherSession, type PusherOptions } from '../stream/pusher.js';
import type { NewNotification } from '../types.js';

export interface PusherRouteOptions extends PusherConfig, Omit<PusherOptions, 'presence' | 'userChannel'> {
  publisher: Publisher;
}

/** An event as `POST /apps/:appId/events` takes it (and each item of `batch_events`, with one `channel`). */
interface PusherEventBody {
  name: string;
  data: string;
  channels?: string[];
  channel?: string;
  socket_id?: string;
  info?: string;
}

const socketIdSchema = { type: 'string', pattern: '^\\d+\\.\\d+$', maxLength: 64 } as const;
const eventProperties = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  data: { type: 'string' },
  socket_id: socketIdSchema,
  info: { type: 'string', maxLength: 200 },
} as const;

const eventSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'data'],
  properties: { ...eventProperties, channels: { type: 'array', items: channelSchema, minItems: 1, maxItems: 100, uniqueItems: true }, channel: channelSchema },
  oneOf: [{ required: ['channels'] }, { required: ['channel'] }],
} as const;

const batchSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['batch'],
  properties: {
    batch: {
      type: 'array',
      minItems: 1,
      maxItems: 100,
      items: { type: 'object', additionalProperties: false, required: ['name', 'data', 'channel'], properties: { ...eventProperties, channel: channelSchema } },
    },
  },
} as const;

/** The signature's parameters and the channel queries' own; other parameters are signed but not read. */
const signedQuery = {
  type: 'object',
  properties: {
    auth_key: { type: 'string' },
    auth_timestamp: { type: 'string' },
    auth_version: { type: 'string' },
    auth_signature: { type: 'string' },
    body_md5: { type: 'string' },
    info: { type: 'string', maxLength: 200 },
    filter_by_prefix: { type: 'string', maxLength: 200 },
  },
} as const;

const appParams = { type: 'object', required: ['appId'], properties: { appId: { type: 'string', maxLength: 64 } } } as const;
const channelParams = { type: 'object', required: ['appId', 'channel'], properties: { appId: { type: 'string', maxLength: 64 }, channel: channelSchema } } as const;

declare module 'fastify' {
  interface FastifyRequest {
    /** The Pusher app a signed HTTP API request is for (set by its onRequest check). */
    pusherApp: PusherApp | null;
    /** The MD5 of the body as it streamed in, for `body_md5`. */
    bodyHash: Hash | null;
  }
}

/** Mounts the Pusher protocol, when HERALD_PUSHER_APPS names any app. */
export async function pusherRoutes(app: FastifyInstance, opts: PusherRouteOptions): Promise<void> {
  const byId = new Map(opts.apps.map((a) => [a.id, a]));
  const byKey = new Map(opts.apps.map((a) => [a.key, a]));
  const userChannel = new UserChannel(opts.userChannel);
  const presence = new PresenceRegistry(opts.bus, opts.hub, 2 * opts.heartbeatMs, (err) => app.log.error({ err }, 'bus publish of presence failed'));
  const sessionOpts: PusherOptions = { ...opts, presence, userChannel };
  const sessions = new Set<PusherSession>();
  // One timer for every socket, as the hub has for its streams.
  const heartbeat = setInterval(() => {
    for (const s of sessions) s.heartbeat();
  }, opts.heartbeatMs);
  heartbeat.unref();
  app.addHook('preClose', async () => {
    clearInterval(heartbeat);
    for (const s of [...sessions]) s.end();
    await presence.close();
  });

  app.route<{ Params: { key: string }; Querystring: { protocol?: string } }>({
    method: 'GET',
    url: '/app/:key',
    schema: {
      summary: 'Pusher protocol 7 WebSocket (pusher-js, laravel-echo): an HTTP upgrade',
      params: { type: 'object', properties: { key: { type: 'string', maxLength: 128 } } },
      response: { 426: errorSchema },
    },
    handler: () => {
      throw errors.upgradeRequired();
    },
    wsHandler: (socket, request) => {
      const pusherApp = byKey.get(request.params.key);
      if (!pusherApp) return PusherSession.refuse(socket, pusherCode.appNotFound, `no app with key ${request.params.key.slice(0, 64)}`);
      const protocol = Number(request.query.protocol ?? 7);
      if (!(protocol >= 5 && protocol <= 7)) return PusherSession.refuse(socket, pusherCode.unsupportedProtocol, 'protocol versions 5 to 7 are supported');
      const raw = releaseUpgrade(socket, request);
      sessions.add(new PusherSession(socket, raw, pusherApp, request.ip, sessionOpts, request.log, (s) => sessions.delete(s)));
    },
  });

  app.decorateRequest('pusherApp', null);
  app.decorateRequest('bodyHash', null);
  /** onRequest: the app exists and the request is signed by its secret, before any body is read. */
  const signed = async (request: FastifyRequest) => {
    const appId = (request.params as { appId: string }).appId;
    const pusherApp = byId.get(appId);
    if (!pusherApp) throw errors.pusherAppNotFound(appId);
    const url = request.raw.url ?? '';
    const q = url.indexOf('?');
    const problem = requestSignatureProblem(
      pusherApp,
      request.method,
      q < 0 ? url : url.slice(0, q),
      new URLSearchParams(q < 0 ? '' : url.slice(q + 1)),
      Math.floor(Date.now() / 1000),
    );
    if (problem !== undefined) throw errors.pusherSignatureInvalid(problem);
    request.pusherApp = pusherApp;
  };
  /** preParsing: hashes the body as it arrives, so that `body_md5` is checked against the bytes sent. */
  const hashBody = async (request: FastifyRequest, _reply: unknown, payload: NodeJS.ReadableStream) => {
    const hash = (request.bodyHash = createHash('md5'));
    // Fastify compares this with content-length, as it does for the request stream itself.
    const tee = Object.assign(
      new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          tee.receivedEncodedLength += chunk.length;
          done(null, chunk);
        },
      }),
      { receivedEncodedLength: 0 },
    );
    return payload.pipe(tee);
  };
  const bodyMatches = async (request: FastifyRequest) => {
    const given = (request.query as { body_md5?: string }).body_md5;
    if (given !== request.bodyHash?.digest('hex')) throw errors.pusherSignatureInvalid('body_md5 does not match the body');
  };

  const publish = async (request: FastifyRequest, e: PusherEventBody) => {
    const pusherApp = request.pusherApp!;
    const channels = e.channels ?? [e.channel!];
    await Promise.all(
      channels.map(async (channel) => {
        const user = userChannel.userOf(channel);
        const fields = notificationFields(e.name, e.data);
        const n: NewNotification = { ...fields, target: user === undefined ? { topic: topicOf(pusherApp, channel) } : { users: [user] } };
        await opts.publisher.publish(n, undefined, request.log, e.socket_id);
      }),
    );
  };

  const postOptions = (summary: string, body: object) => ({
    onRequest: signed,
    preParsing: hashBody,
    preValidation: bodyMatches,
    schema: { summary, params: appParams, querystring: signedQuery, body, response: { 200: { type: 'object', additionalProperties: true }, ...errorResponses } },
  });

  app.post<{ Body: PusherEventBody }>('/apps/:appId/events', postOptions('Pusher HTTP API: trigger an event on channels (stored, then delivered)', eventSchema), async (request) => {
    await publish(request, request.body);
    return {};
  });

  app.post<{ Body: { batch: PusherEventBody[] } }>(
    '/apps/:appId/batch_events',
    postOptions('Pusher HTTP API: trigger several events (stored, then delivered)', batchSchema),
    async (request) => {
      // In order, so that the events of one channel get increasing ids as they were listed.
      for (const e of request.body.batch) await publish(request, e);
      return { batch: request.body.batch.map(() => ({})) };
    },
  );

  const infoOf = (request: FastifyRequest) => new Set(((request.query as { info?: string }).info ?? '').split(',').filter(Boolean));
  const getOptions = (summary: string, params: object) => ({
    onRequest: signed,
    schema: { summary, params, querystring: signedQuery, response: { 200: { type: 'object', additionalProperties: true }, ...errorResponses } },
  });

  app.get<{ Querystring: { filter_by_prefix?: string } }>(
    '/apps/:appId/channels',
    getOptions('Pusher HTTP API: the occupied channels', appParams),
    async (request) => {
      const pusherApp = request.pusherApp!;
      const prefix = request.query.filter_by_prefix ?? '';
      const wantUsers = infoOf(request).has('user_count');
      if (wantUsers && !prefix.startsWith('presence-')) throw errors.validationFailed('info=user_count needs filter_by_prefix=presence-');
      const channels: Record<string, Record<string, number>> = {};
      const root = topicOf(pusherApp, prefix);
      for (const [topic] of opts.hub.topicsUnder(root)) channels[channelOfTopic(pusherApp, topic)!] = {};
      for (const topic of presence.topics()) if (topic.startsWith(root)) channels[channelOfTopic(pusherApp, topic)!] = {};
      if (wantUsers) for (const name of Object.keys(channels)) channels[name] = { user_count: presence.members(topicOf(pusherApp, name)).size };
      return { channels };
    },
  );

  app.get<{ Params: { channel: string } }>(
    '/apps/:appId/channels/:channel',
    getOptions('Pusher HTTP API: one channel’s state', channelParams),
    async (request) => {
      const { channel } = request.params;
      const topic = topicOf(request.pusherApp!, channel);
      const info = infoOf(request);
      const isPresence = channelKind(channel) === 'presence';
      if (info.has('user_count') && !isPresence) throw errors.validationFailed('user_count is only for presence channels');
      const subscriptions = opts.hub.streamsOn(topic);
      const users = isPresence ? presence.members(topic).size : 0;
      return {
        occupied: subscriptions > 0 || users > 0,
        ...(info.has('user_count') && { user_count: users }),
        ...(info.has('subscription_count') && { subscription_count: subscriptions }),
      };
    },
  );

  app.get<{ Params: { channel: string } }>(
    '/apps/:appId/channels/:channel/users',
    getOptions('Pusher HTTP API: a presence channel’s members', channelParams),
    async (request) => {
      const { channel } = request.params;
      if (channelKind(channel) !== 'presence') throw errors.validationFailed('users are only listed for presence channels');
      return { users: [...presence.members(topicOf(request.pusherApp!, channel)).keys()].map((id) => ({ id })) };
    },
  );
}
