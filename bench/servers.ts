// The servers a scenario measures, each a separate process on 127.0.0.1: Herald (the built
// dist/src/server.js, or --server) on a fresh temp data dir, and the Socket.IO peer (peer.ts).
// Whatever starts here is stopped by the helpers that run a scenario on it.
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { createSigner } from 'fast-jwt';
import { projectFile } from '../src/paths.js';
import { benchScript, spawnNode } from './lib.js';
import type { Options } from './options.js';
import { log } from './report.js';

export const jwtSecret = 'bench-secret-that-is-long-enough-0123456789';
export const publisherKey = 'bench-publisher-key-0123456789';
export const resultsDir = projectFile('bench', 'results');

/** A user's bearer token for Herald (and the peer), signed with the bench's secret. */
export const userToken: (claims: { sub: string }) => string = createSigner({ key: jwtSecret, algorithm: 'HS256' });

export interface Server {
  name: 'herald' | 'peer';
  proto: 'sse' | 'ws' | 'sio' | 'pusher';
  port: number;
  pid: number;
  dataDir: string;
  /** Stops the process; its data dir is removed unless `keepData`. */
  stop(signal?: NodeJS.Signals, keepData?: boolean): Promise<void>;
}

/** Starts a server process and waits for its "listening on http://..." line. */
async function startProcess(proc: ChildProcess): Promise<{ port: number; stop: (signal?: NodeJS.Signals) => Promise<void> }> {
  let out = '';
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 20 s:\n${out}`)), 20_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    void exited.then(() => reject(new Error(`server exited (code ${proc.exitCode}, signal ${proc.signalCode}):\n${out}`)));
  });
  return {
    port,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      proc.kill(signal);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The Pusher app of a bench run, and the channel every Pusher stream subscribes to. */
export const pusherBench = { id: 'bench', key: 'benchkey', secret: 'bench-pusher-secret-0123456789', channel: 'bench' };
export const pusherBenchTopic = `pusher/${pusherBench.id}/${pusherBench.channel}`;

/**
 * Starts Herald; its streams are opened over SSE, over its WebSocket with `proto: 'ws'`, or as
 * pusher-js would with `proto: 'pusher'` (the bench's Pusher app configured).
 */
export async function startHerald(o: Options, env: Record<string, string> = {}, proto: 'sse' | 'ws' | 'pusher' = 'sse'): Promise<Server> {
  const dataDir = mkdtempSync(join(os.tmpdir(), 'herald-bench-'));
  const profDir = join(resultsDir, 'profiles');
  if (o.cpuProf) mkdirSync(profDir, { recursive: true });
  const proc = spawnNode(o.server, [], {
    env: {
      HERALD_DATA_DIR: dataDir,
      HERALD_JWT_SECRET: jwtSecret,
      HERALD_PUBLISHER_KEY: publisherKey,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'warn',
      // Its load holds up to tens of thousands of streams from a few loopback addresses: no connection caps.
      HERALD_MAX_CONNECTIONS: '0',
      HERALD_MAX_CONNECTIONS_PER_IP: '0',
      HERALD_PUSHER_APPS: `${pusherBench.id}:${pusherBench.key}:${pusherBench.secret}`,
      ...env,
    },
    nodeArgs: [...o.heraldNodeArgs, ...(o.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [])],
  });
  const p = await startProcess(proc);
  return {
    name: 'herald',
    proto,
    port: p.port,
    pid: proc.pid!,
    dataDir,
    async stop(signal, keepData = false) {
      await p.stop(signal);
      if (!keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The Socket.IO peer; with `spinUs`, it busy-waits that long on every publish (see peer.ts). */
export async function startPeer(spinUs = 0): Promise<Server> {
  const proc = spawnNode(benchScript('peer'), [], { env: { PORT: '0', JWT_SECRET: jwtSecret, PUBLISHER_KEY: publisherKey, PEER_SPIN_US: String(spinUs) } });
  const p = await startProcess(proc);
  return { name: 'peer', proto: 'sio', port: p.port, pid: proc.pid!, dataDir: '', stop: p.stop };
}

export type Start = () => Promise<Server>;

/** What a scenario compares: Herald over SSE, Herald over its WebSocket, and the Socket.IO peer. */
export interface Contenders {
  herald: Start;
  heraldWs: Start | null;
  peer: Start | null;
}

/** Runs `fn` on every contender of this run, one after another, and logs each result. */
export async function eachContender<T>(c: Contenders, label: string, fn: (start: Start) => Promise<T>): Promise<{ herald: T; heraldWs: T | null; peer: T | null }> {
  const r: Record<string, T> = {};
  for (const [name, start] of Object.entries(c) as [keyof Contenders, Start | null][]) {
    if (!start) continue;
    r[name] = await fn(start);
    log(`${label} ${name}: ${JSON.stringify(r[name])}`);
  }
  return { herald: r.herald!, heraldWs: r.heraldWs ?? null, peer: r.peer ?? null };
}

/** Starts the servers one after another, runs `fn` with them, and stops every one that started, whatever happens. */
export async function withServers<T>(starts: Start[], fn: (s: Server[]) => Promise<T>): Promise<T> {
  const servers: Server[] = [];
  try {
    for (const start of starts) servers.push(await start());
    return await fn(servers);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

export const withServer = <T>(start: Start, fn: (s: Server) => Promise<T>): Promise<T> => withServers([start], ([s]) => fn(s!));
