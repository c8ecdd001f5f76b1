// The WebSocket transport's command protocol: one session per socket, holding its Subscription.
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { WebSocket, type RawData } from 'ws';
import type { StreamConfig, WsConfig } from '../config.js';
import type { Inbox } from '../domain/inbox.js';
import { errorBody, errors, HeraldError } from '../errors.js';
import type { TopicAccess } from '../domain/topics.js';
import { jsonProblem } from '../http/json-body.js';
import { validatorCompiler } from '../http/validation.js';
import { topicSchema } from '../schemas.js';
import type { Metrics } from '../metrics.js';
import type { Replay } from './recent.js';
import type { Flusher } from './cork.js';
import type { Hub } from './hub.js';
import { RateBound, type ResumeLimiter } from './limits.js';
import { Subscription } from './subscription.js';
import { closeCode, WsSink } from './ws.js';

export interface WsOptions extends StreamConfig, WsConfig {
  replay: Replay;
  hub: Hub;
  inbox: Inbox;
  /** HERALD_CORS_ORIGINS: the browser origins allowed to open a socket. */
  corsOrigins: readonly string[];
  metrics: Metrics;
  resumes: ResumeLimiter;
  flusher: Flusher;
}

/** A notification id or resume point: what `idString` allows, as a JSON number. */
const idValue = { type: 'integer', minimum: 0, maximum: 999_999_999_999_999 } as const;

/**
 * The client's correlation value, echoed in the reply. Named `ref`, not `id`: in every frame `id` is a
 * notification id, and a client that saves any `id` it sees as its resume point must never save this.
 */
const refSchema = { type: ['string', 'number'], maxLength: 128 } as const;

const command = (properties: Record<string, unknown>, required: string[] = []) =>
  ({
    type: 'object',
    additionalProperties: false,
    required: ['type', ...required],
    properties: { type: { type: 'string' }, ref: refSchema, ...properties },
  }) as const;

const commandSchemas = {
  resume: command({ lastEventId: idValue }),
  subscribe: command({ topic: topicSchema }, ['topic']),
  unsubscribe: command({ topic: topicSchema }, ['topic']),
  read: command({ id: idValue }, ['id']),
  'read-all': command({}),
  ping: command({}),
};
type CommandType = keyof typeof commandSchemas;
const commandTypes = Object.keys(commandSchemas) as CommandType[];

type Validator = ReturnType<typeof validatorCompiler>;
const validators: Partial<Record<CommandType, Validator>> = {};

/**
 * A command's validator, compiled on its first use and shared by every socket. Validated as a body
 * is: a JSON message already has types, so none is coerced.
 */
function validatorOf(type: CommandType): Validator {
  return (validators[type] ??= validatorCompiler({ schema: commandSchemas[type], httpPart: 'body', method: 'GET', url: '/ws' }));
}

/** A command after validation against its schema. */
interface Command {
  type: CommandType;
  lastEventId?: number;
  topic?: string;
  id?: number;
}

type Ref = string | number | null;

type ValidationError = NonNullable<Validator['errors']>[number];

function describe(type: string, e: ValidationError | undefined): string {
  if (e === undefined) return `invalid ${type} command`;
  if (e.keyword === 'additionalProperties') return `${type} has an unknown field "${String(e.params.additionalProperty)}"`;
  return `${type}${e.instancePath.replaceAll('/', '.')} ${e.message ?? 'is invalid'}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * What a session keeps of its upgrade request, copied out of it: an open socket holds no request
 * (see `releaseUpgrade`), as thousands of idle ones would otherwise hold thousands of them.
 */
export interface WsPeer {
  /** The TCP socket under the WebSocket, released from node:http. */
  raw: Socket;
  user: string;
  /** The topics named in the URL (`?topic=`), already checked against `access`. */
  topics: string[];
  /** `?lastEventId=`: where to start at once. */
  lastEventId: string | undefined;
  /** The topics the token lets it read, for `subscribe`. */
  access: TopicAccess;
  /** For the resume limit. */
  ip: string;
  log: FastifyBaseLogger;
}

/**
 * One client's WebSocket: a Subscription (the same catch-up and live path as SSE) plus the commands
 * the client sends. Commands run one at a time in arrival order, so replies come back in that order.
 *
 * Where the stream starts: `?lastEventId=` in the URL starts it at once from there. Otherwise the
 * first message decides: `resume` (with or without `lastEventId`) starts it there; any other command
 * starts it live. A client that sends nothing is started live after one full heartbeat interval.
 * Until it starts, the subscription is already in the hub with live events held, so none is lost.
 */
export class WsSession {
  private readonly sink: WsSink;
  private readonly sub: Subscription;
  private readonly rate: RateBound;
  private started = false;
  private heartbeats = 0;
  private queue: Promise<void> = Promise.resolve();
  private readonly log: FastifyBaseLogger;
  private readonly access: TopicAccess;
  private readonly ip: string;

  constructor(
    private readonly socket: WebSocket,
    peer: WsPeer,
    private readonly opts: WsOptions,
  ) {
    this.log = peer.log;
    this.access = peer.access;
    this.ip = peer.ip;
    this.rate = new RateBound(opts.maxMessagesPerSecond);
    this.sink = new WsSink(socket, peer.raw, opts.maxPendingBytes, opts.metrics, opts.flusher, () => this.onHeartbeat());
    this.sub = new Subscription(opts, peer.user, peer.topics, this.sink);
    socket.on('close', () => this.sub.close());
    socket.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    this.sub.join();
    const last = peer.lastEventId;
    if (last !== undefined) this.enqueue(() => this.start(Number(last)));
  }

  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task);
  }

  private onHeartbeat(): void {
    // The second heartbeat, not the first: the first may come a moment after the socket opened,
    // before a `resume` the client sent at once could arrive.
    if (!this.started && ++this.heartbeats >= 2) this.enqueue(() => this.start(undefined));
  }

  private async start(lastId: number | undefined): Promise<void> {
    if (this.started) return;
    this.started = true;
    try {
      await this.sub.start(lastId);
    } catch (err) {
      this.log.error({ err }, 'catch-up failed; closing the socket so the client retries');
      this.socket.close(closeCode.internalError, 'catch-up failed; reconnect to resume');
    }
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    if (!this.rate.take()) {
      this.socket.close(closeCode.policyViolation, 'too many messages');
      return;
    }
    // With the default binaryType every message arrives as one Buffer.
    const text = isBinary ? undefined : (data as Buffer).toString('utf8');
    this.enqueue(() => this.handle(text));
  }

  private async handle(text: string | undefined): Promise<void> {
    let ref: Ref = null;
    try {
      if (text === undefined) throw errors.messageNotText();
      let msg: unknown;
      try {
        msg = JSON.parse(text);
      } catch {
        throw errors.messageInvalidJson();
      }
      const problem = jsonProblem(text, 'message');
      if (problem !== undefined) throw errors.jsonNotStrict(problem);
      if (!isObject(msg)) throw errors.validationFailed('message must be a JSON object');
      if (typeof msg.ref === 'string' || typeof msg.ref === 'number') ref = msg.ref;
      const type = msg.type;
      if (typeof type !== 'string' || !commandTypes.includes(type as CommandType)) throw errors.commandUnknown(commandTypes);
      const validate = validatorOf(type as CommandType);
      if (!validate(msg)) throw errors.validationFailed(describe(type, validate.errors?.[0]));
      const data = await this.run(msg as unknown as Command);
      this.reply({ event: 'reply', ref, data });
    } catch (err) {
      if (err instanceof HeraldError) {
        this.reply({ event: 'error', ref, data: errorBody(err) });
        // A refused resume cannot start the stream (see run): the client reconnects when told.
        if (err.code === 'resume_rate_limited') this.socket.close(closeCode.tryAgainLater, `retry in ${err.options.retryAfterSeconds} s`);
        return;
      }
      this.log.error({ err }, 'websocket command failed');
      this.reply({ event: 'error', ref, data: errorBody(errors.internal()) });
    }
  }

  private reply(frame: { event: 'reply' | 'error'; ref: Ref; data: unknown }): void {
    this.sink.write(JSON.stringify(frame));
  }

  private async run(cmd: Command): Promise<Record<string, unknown>> {
    if (cmd.type === 'resume') {
      if (this.started) throw errors.streamAlreadyStarted();
      const refusal = cmd.lastEventId === undefined ? undefined : this.opts.resumes.take(this.sub.user, this.ip);
      // Closed, not started live: a live start would skip what the client missed, without a word.
      if (refusal) throw errors.resumeRateLimited(refusal);
      await this.start(cmd.lastEventId);
      return {};
    }
    await this.start(undefined);
    const user = this.sub.user;
    switch (cmd.type) {
      case 'subscribe': {
        const topic = cmd.topic!;
        if (!this.access.mayRead(topic)) throw errors.topicForbidden(topic);
        if (!this.sub.topics.includes(topic) && this.sub.topics.length >= this.opts.maxTopics) {
          throw errors.tooManyTopics(this.opts.maxTopics);
        }
        this.sub.subscribe(topic);
        // The stream's count covers its topics: it changed with them.
        this.opts.hub.recount(user);
        return { topics: this.sub.topics };
      }
      case 'unsubscribe':
        this.sub.unsubscribe(cmd.topic!);
        this.opts.hub.recount(user);
        return { topics: this.sub.topics };
      case 'read': {
        const id = cmd.id!;
        if (!(await this.opts.inbox.markRead(user, id))) throw errors.notificationNotFound(id);
        return { id, read: true };
      }
      case 'read-all':
        return { upTo: await this.opts.inbox.markAllRead(user) };
      case 'ping':
        return {};
    }
  }
}
