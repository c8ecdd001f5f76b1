// A real Herald on a loopback port: in this process with a real SQLite file (or PostgreSQL), or the
// built server as a separate process.
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import t from 'tap';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { createBus } from '../../src/bus/index.js';
import { loadConfig, type Config } from '../../src/config.js';
import { projectFile } from '../../src/paths.js';
import { createStore } from '../../src/store/index.js';
import { loadSecrets } from '../../src/secrets.js';
import type { Bus } from '../../src/bus/bus.js';
import type { Store } from '../../src/store/store.js';
import { startNodeArgs, tempDir } from '../../support/util.js';
import type { Json } from './http.js';
import { jwtSecret, publisherKey, tokenFor } from './tokens.js';

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

/**
 * With HERALD_TEST_STORE=postgres (set by test/store/postgres-core.test.ts), every server gets a fresh
 * database on one throwaway PostgreSQL server per test process instead of a SQLite file, so the core
 * suites prove the same behaviour on both stores.
 */
let testPostgres: Promise<{ newDatabase(): Promise<string> }> | undefined;
async function storeUnderTest(): Promise<Record<string, string>> {
  if (process.env.HERALD_TEST_STORE !== 'postgres') return {};
  testPostgres ??= import('../../support/backends.js').then(async ({ startPostgres }) => {
    const server = await startPostgres();
    t.teardown(() => server.stop());
    return server;
  });
  return { HERALD_STORE: await (await testPostgres).newDatabase() };
}

/** Starts Herald in this process on 127.0.0.1 with a SQLite file in a fresh temp dir (or `dataDir`). */
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
  // The tests' JWT secret and publisher key whatever the env says (their tokens must verify), the other
  // secrets (VAPID keys, the webhook secret) as a first start makes them.
  const app = await buildApp({ config, secrets: { ...loadSecrets(config), jwtSecret, publisherKey }, store, bus });
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

export interface Child {
  url: string;
  proc: ChildProcess;
  output: () => string;
  /** Sends a signal and resolves with the exit code/signal once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs the built server (`dist/src/server.js`, with the node options `npm start` gives it) as a separate process. */
export async function spawnServer(env: Record<string, string>): Promise<Child> {
  const proc = spawn(process.execPath, [...startNodeArgs(), projectFile('dist', 'src', 'server.js')], {
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
