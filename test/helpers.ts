// Shared test fixtures: a real Herald on a loopback port with a real SQLite file, real SSE and WebSocket clients.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';
import net from 'node:net';
import { EventSource } from 'eventsource';
import t from 'tap';
import { createSigner } from 'fast-jwt';
import { WebSocket } from 'ws';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.js';
import { createBus } from '../src/bus/index.js';
import { loadConfig, type Config } from '../src/config.js';
import { projectFile } from '../src/paths.js';
import { createStore } from '../src/store/index.js';
import type { Bus } from '../src/bus/bus.js';
import type { Store } from '../src/store/store.js';
import { freePort, sleep, tempDir } from '../support/util.js';

export { freePort, sleep, tempDir };

// Response bodies and event payloads are arbitrary JSON that each test asserts on field by field;
// a type for them would only restate those assertions.
export type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

export const jwtSecret = 'test-secret-that-is-long-enough-0123456789';
export const publisherKey = 'test-publisher-key-0123456789';

/** Signs a JWT with the test secret: `sub` = user; extra claims override (scope, exp, aud...). */
export function tokenFor(user: string | undefined, claims: Record<string, unknown> = {}, secret = jwtSecret): string {
  const sign = createSigner({ key: secret, algorithm: 'HS256' });
  return sign({ ...(user === undefined ? {} : { sub: user }), ...claims });
}

export interface Server {
  url: string;
  app: FastifyInstance;
  store: Store;
  bus: Bus;
  config: Config;
  dataDir: string;
  /** POST /notifications as the publisher; resolves with status and JSON body. */
  publish(body: Record<string, unknown>, headers?: Record<string, string>): Promise<{ status: number; body: Json }>;
  /** A JSON request as `user` (a JWT is made for them, with `claims`); `user: null` sends no credentials. */
  request(method: string, path: string, user: string | null, body?: unknown, claims?: Record<string, unknown>): Promise<{ status: number; body: Json }>;
  close(): Promise<void>;
}

export interface ServerOptions {
  env?: Record<string, string>;
  dataDir?: string;
  /** Share a bus with another in-process server (two instances of one deployment). */
  bus?: Bus;
}

/** Starts Herald in this process on 127.0.0.1 with a SQLite file in a fresh temp dir (or `dataDir`). */
/**
 * With HERALD_TEST_STORE=postgres (set by test/postgres-core.test.ts), every server gets a fresh
 * database on one throwaway PostgreSQL server per test process instead of a SQLite file, so the core
 * suites prove the same behaviour on both stores.
 */
let testPostgres: Promise<{ newDatabase(): Promise<string> }> | undefined;
async function storeUnderTest(): Promise<Record<string, string>> {
  if (process.env.HERALD_TEST_STORE !== 'postgres') return {};
  testPostgres ??= import('../support/backends.js').then(async ({ startPostgres }) => {
    const server = await startPostgres();
    t.teardown(() => server.stop());
    return server;
  });
  return { HERALD_STORE: await (await testPostgres).newDatabase() };
}

export async function startServer(opts: ServerOptions = {}): Promise<Server> {
  const dataDir = opts.dataDir ?? tempDir();
  const config = loadConfig({
    ...(await storeUnderTest()),
    HERALD_DATA_DIR: dataDir,
    HERALD_JWT_SECRET: jwtSecret,
    HERALD_PUBLISHER_KEY: publisherKey,
    HERALD_SQLITE_SYNC: 'normal',
    LOG_LEVEL: 'silent',
    PORT: '0',
    ...opts.env,
  });
  const store = await createStore(config.store);
  const bus = opts.bus ?? (await createBus(config.bus, store));
  const app = await buildApp({ config, secrets: { jwtSecret, publisherKey }, store, bus });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  const url = `http://127.0.0.1:${address.port}`;
  const json = async (method: string, path: string, headers: Record<string, string>, body?: unknown) => {
    const res = await fetch(url + path, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  let closed = false;
  return {
    url,
    app,
    store,
    bus,
    config,
    dataDir,
    publish: (body, headers = {}) => json('POST', '/notifications', { authorization: `Bearer ${publisherKey}`, ...headers }, body),
    request: (method, path, user, body, claims) =>
      json(method, path, user === null ? {} : { authorization: `Bearer ${tokenFor(user, claims)}` }, body),
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      if (!opts.bus) await bus.close();
      await store.close();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface ReceivedEvent {
  type: string;
  id: string;
  data: Json;
}

/** What a client received so far, and waits for it to satisfy a condition (both test clients use it). */
class Received<T> {
  readonly items: T[] = [];
  private waiters: (() => void)[] = [];

  constructor(private readonly describe: (items: T[]) => string) {}

  push(item: T): void {
    this.items.push(item);
    for (const w of [...this.waiters]) w();
  }

  /** Resolves when `pred` holds over the items so far; rejects after `ms`. */
  waitFor(pred: (items: T[]) => boolean, ms: number): Promise<void> {
    if (pred(this.items)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`timed out after ${ms} ms; got ${this.describe(this.items)}`));
      }, ms);
      const check = () => {
        if (!pred(this.items)) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve();
      };
      this.waiters.push(check);
    });
  }
}

/** A real EventSource client (the `eventsource` package) that records every event it receives. */
export class SseClient {
  private readonly received = new Received<ReceivedEvent>((events) => JSON.stringify(events.map((e) => [e.type, e.id])));
  readonly events = this.received.items;
  readonly es: EventSource;
  opened: Promise<void>;

  constructor(url: string, token: string | undefined, headers: Record<string, string> = {}) {
    this.es = new EventSource(url, {
      fetch: (input, init) =>
        fetch(input, {
          ...init,
          headers: { ...init?.headers, ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
        }),
    });
    this.opened = new Promise((resolve, reject) => {
      this.es.addEventListener('open', () => resolve(), { once: true });
      this.es.addEventListener('error', (e) => reject(new Error(`EventSource error: ${String((e as { message?: string }).message)}`)), {
        once: true,
      });
    });
    for (const type of ['notification', 'read', 'deleted', 'reload']) {
      this.es.addEventListener(type, (e) => {
        this.received.push({ type, id: e.lastEventId, data: JSON.parse(e.data) });
      });
    }
  }

  of(type: string): ReceivedEvent[] {
    return this.events.filter((e) => e.type === type);
  }

  ids(): number[] {
    return this.of('notification').map((e) => e.data.id as number);
  }

  /** Resolves when `pred` holds over the events so far; rejects after `ms`. */
  waitFor(pred: (events: ReceivedEvent[]) => boolean, ms = 5000): Promise<void> {
    return this.received.waitFor(pred, ms);
  }

  close(): void {
    this.es.close();
  }
}

/** Opens an SSE stream as `user` (token `claims`, e.g. the topics it may read) and waits until the server has accepted it. */
export async function connect(
  server: Server,
  user: string,
  query = '',
  headers: Record<string, string> = {},
  claims: Record<string, unknown> = {},
): Promise<SseClient> {
  const c = new SseClient(`${server.url}/events${query}`, tokenFor(user, claims), headers);
  await c.opened;
  // The stream is open once headers arrive; let the server finish joining the hub before publishing.
  await new Promise((r) => setTimeout(r, 20));
  return c;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Everything received until `ms` passed or the server ended the response. */
  text: string;
}

/** A raw HTTP GET that reads for at most `ms`: to see exact SSE bytes and headers, or error bodies. */
export function rawGet(url: string, headers: Record<string, string> = {}, ms = 500): Promise<RawResponse> {
  return rawRequest('GET', url, headers, undefined, ms);
}

/**
 * Any raw HTTP request, reading the answer for at most `ms`: sends bytes exactly as given (invalid
 * UTF-8, odd content types) and reads streams and errors alike.
 */
export function rawRequest(method: string, url: string, headers: Record<string, string>, body?: string | Buffer, ms = 500): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    // Node sends a DELETE body without framing unless told its length.
    const framing = body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) };
    // A fresh connection each time: a kept-alive one the server closed after an error would reset the next request.
    const req = http.request(url, { method, headers: { ...framing, ...headers }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      const done = () => {
        clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text });
      };
      const timer = setTimeout(done, ms);
      res.on('end', done);
      res.on('close', done);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface RawConnection {
  socket: net.Socket;
  /** Resolves when the connection closed, by either side. */
  closed: Promise<void>;
  /** Everything received so far. */
  text: () => string;
}

/** A raw TCP connection to `url`'s port, from `localAddress` if given (any 127.x.y.z): bytes exactly as written, and exactly as received. */
export async function rawConnection(url: string, localAddress?: string): Promise<RawConnection> {
  const { port } = new URL(url);
  const socket = net.connect({ port: Number(port), host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (text += d));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  return { socket, closed, text: () => text };
}

/**
 * An SSE stream as `user` over a raw socket, once its head has arrived: the socket, to stop reading
 * or send what a client should not; everything received so far; and when the connection closed.
 */
export async function rawStream(url: string, user: string): Promise<RawConnection> {
  const conn = await rawConnection(url);
  conn.socket.write(`GET /events HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${tokenFor(user)}\r\n\r\n`);
  await waitUntil('the stream head', () => conn.text().includes('retry:'));
  if (!conn.text().startsWith('HTTP/1.1 200')) throw new Error(`stream not opened: ${conn.text()}`);
  return conn;
}

/** Parses SSE text into events the way the spec's parser does (enough for tests). */
export function parseSse(text: string): { id?: string; event?: string; data: string }[] {
  const out: { id?: string; event?: string; data: string }[] = [];
  for (const block of text.split(/\r\n\r\n|\n\n|\r\r/)) {
    const ev: { id?: string; event?: string; data: string[] } = { data: [] };
    for (const line of block.split(/\r\n|\n|\r/)) {
      if (line === '' || line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'id') ev.id = value;
      else if (field === 'event') ev.event = value;
      else if (field === 'data') ev.data.push(value);
    }
    if (ev.data.length > 0) out.push({ ...(ev.id === undefined ? {} : { id: ev.id }), ...(ev.event === undefined ? {} : { event: ev.event }), data: ev.data.join('\n') });
  }
  return out;
}

export interface Child {
  url: string;
  proc: ChildProcess;
  output: () => string;
  /** Sends a signal and resolves with the exit code/signal once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs the built server (`dist/src/server.js`, as `npm start` does) as a separate process. */
export async function spawnServer(env: Record<string, string>): Promise<Child> {
  const proc = spawn(process.execPath, [projectFile('dist', 'src', 'server.js')], {
    env: {
      PATH: process.env.PATH ?? '',
      HERALD_JWT_SECRET: jwtSecret,
      HERALD_PUBLISHER_KEY: publisherKey,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 15_000);
    const onData = () => {
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    proc.stdout!.on('data', onData);
    void exited.then(() => reject(new Error(`server exited:\n${out}`)));
  });
  return {
    url,
    proc,
    output: () => out,
    stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/**
 * Runs the built bench (`dist/bench/run.js`, which `npm test` builds first) with `args`, writing its
 * JSON result to a temp file; killed after `ms`. `result` is that file's content (undefined if none).
 */
export async function runBench(args: string[], ms: number): Promise<{ code: number | null; stdout: string; stderr: string; result: Json }> {
  const out = join(tempDir('herald-bench-smoke-'), 'result.json');
  const child = spawn(process.execPath, [projectFile('dist', 'bench', 'run.js'), ...args, '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), ms);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearTimeout(killer);
  const result: Json = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : undefined;
  rmSync(join(out, '..'), { recursive: true, force: true });
  return { code, stdout, stderr, result };
}

/** A real WebSocket client (the `ws` package) on /ws that records every frame the server sends. */
export class WsClient {
  private readonly received = new Received<Json>((frames) => JSON.stringify(frames));
  readonly frames = this.received.items;
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  /** Resolves with the close code and reason once the socket is closed, by either side. */
  readonly closed: Promise<{ code: number; reason: string }>;
  private nextRef = 1;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.ws = new WebSocket(url, { headers });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    this.closed = new Promise((resolve) => this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    // A close the test asked for still emits 'error' on some paths (e.g. the server cut the socket).
    this.ws.on('error', () => {});
    this.ws.on('message', (data) => {
      this.received.push(JSON.parse(String(data)));
    });
  }

  of(event: string): Json[] {
    return this.frames.filter((f) => f.event === event);
  }

  /** Ids of the notification frames received, in order. */
  ids(): number[] {
    return this.of('notification').map((f) => f.id as number);
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Sends a command with a fresh `ref` and resolves with the reply or error frame that carries it. */
  async command(type: string, args: Record<string, unknown> = {}, ms = 5000): Promise<Json> {
    const ref = `r${this.nextRef++}`;
    this.send({ type, ref, ...args });
    await this.waitFor((f) => f.some((x) => x.ref === ref), ms);
    return this.frames.find((x) => x.ref === ref);
  }

  /** Resolves when `pred` holds over the frames so far; rejects after `ms`. */
  waitFor(pred: (frames: Json[]) => boolean, ms = 5000): Promise<void> {
    return this.received.waitFor(pred, ms);
  }

  close(): void {
    this.ws.close();
  }
}

/** The WebSocket URL of a server's /ws with a query string. */
export const wsUrl = (server: Server, query = '') => `${server.url.replace(/^http/, 'ws')}/ws${query}`;

/** Opens /ws as `user` (token, with `claims`, in the Authorization header) and waits for the upgrade. */
export async function wsConnect(server: Server, user: string, query = '', claims: Record<string, unknown> = {}): Promise<WsClient> {
  const c = new WsClient(wsUrl(server, query), { authorization: `Bearer ${tokenFor(user, claims)}` });
  await c.opened;
  return c;
}

/** Tries to open /ws and expects a refusal: resolves with the HTTP status and JSON body instead of a socket. */
export function wsRefusal(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => {
      ws.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
  });
}

/** POST /notifications as the publisher to any Herald (a spawned one too); resolves with status and JSON body. */
export async function publishTo(url: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${url}/notifications`, {
    method: 'POST',
    headers: { authorization: `Bearer ${publisherKey}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/** The ids of `user`'s newest notifications (one history page of up to 200), newest first; `claims` go in the token. */
export async function historyIds(url: string, user: string, query = '', claims: Record<string, unknown> = {}): Promise<number[]> {
  const res = await fetch(`${url}/notifications?limit=200${query}`, { headers: { authorization: `Bearer ${tokenFor(user, claims)}` } });
  return ((await res.json()) as { items: { id: number }[] }).items.map((n) => n.id);
}

/** Polls `pred` until it holds; rejects naming `what` after `ms`. */
export async function waitUntil(what: string, pred: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
