// Throwaway Redis and PostgreSQL servers for the scale-out tests and the bench's fanout2 scenario:
// real processes on free loopback ports, data in temp dirs, stopped in teardown (and killed if the
// process exits first). No tap here (see util.ts): bench/run.ts imports this file. CI installs both
// (.ci/run); locally:
//   apt-get install -y redis-server postgresql
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { delimiter, join } from 'node:path';
import pg from 'pg';
import { freePort, sleep, tempDir } from './util.js';

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** Debian keeps the PostgreSQL server binaries off PATH, under /usr/lib/postgresql/<version>/bin. */
function postgresBin(name: string): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', name)))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const found = versions.length > 0 ? join(root, versions[0]!, 'bin', name) : onPath(name);
  if (!found) throw new Error(`PostgreSQL's ${name} is not installed: apt-get install -y postgresql (.ci/run installs it)`);
  return found;
}

/** The Debian packages startRedis and startPostgres need that are not installed (empty when both are). */
export function missingBackends(): string[] {
  const missing: string[] = [];
  if (!onPath('redis-server')) missing.push('redis-server');
  try {
    postgresBin('initdb');
    postgresBin('postgres');
  } catch {
    missing.push('postgresql');
  }
  return missing;
}

interface Proc {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<void>;
}

function run(cmd: string, args: string[], ids: { uid?: number; gid?: number } = {}): Proc {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...ids });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
  // A test file that dies mid-way must not leave servers behind.
  const reap = () => proc.kill('SIGKILL');
  process.once('exit', reap);
  void exited.then(() => process.off('exit', reap));
  return { proc, output: () => out, exited };
}

async function stopProc(p: Proc, signal: NodeJS.Signals): Promise<void> {
  if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill(signal);
  await p.exited;
}

/** Polls `ready` every 100 ms until it resolves true; fails with the server's output after `ms`. */
async function waitUntil(what: string, p: Proc, ready: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (p.proc.exitCode !== null || p.proc.signalCode !== null) throw new Error(`${what} exited:\n${p.output()}`);
    if (await ready().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${what} did not start within ${ms} ms:\n${p.output()}`);
}

export interface RedisServer {
  url: string;
  /** Kills Redis abruptly (SIGKILL: connections drop, unsent messages are lost). */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts redis-server on a free loopback port, without persistence. */
export async function startRedis(): Promise<RedisServer> {
  const bin = onPath('redis-server');
  if (!bin) throw new Error('redis-server is not installed: apt-get install -y redis-server (.ci/run installs it)');
  const port = await freePort();
  const dir = tempDir('herald-redis-');
  let p: Proc | undefined;
  const start = async () => {
    const proc = run(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]);
    p = proc;
    await waitUntil('redis-server', proc, async () => /Ready to accept connections/.test(proc.output()));
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    kill: async () => {
      if (p) await stopProc(p, 'SIGKILL');
    },
    start,
    async stop() {
      if (p) await stopProc(p, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PostgresServer {
  /** Creates an empty database and returns its URL. */
  newDatabase(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * initdb into a temp dir and runs PostgreSQL on a free loopback port, TCP only. PostgreSQL refuses to
 * run as root, so as root (CI, this machine) it runs as the `postgres` user.
 */
export async function startPostgres(): Promise<PostgresServer> {
  const initdb = postgresBin('initdb');
  const postgres = postgresBin('postgres');
  const ids: { uid?: number; gid?: number } = {};
  if (process.getuid?.() === 0) {
    ids.uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    ids.gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
  }
  const dir = tempDir('herald-pg-');
  if (ids.uid !== undefined) chownSync(dir, ids.uid, ids.gid!);
  const init = run(initdb, ['-D', dir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], ids);
  await init.exited;
  if (init.proc.exitCode !== 0) throw new Error(`initdb failed:\n${init.output()}`);

  const port = await freePort();
  // fsync off: these databases are thrown away, and the tests are about ordering, not durability.
  const p = run(
    postgres,
    ['-D', dir, '-p', String(port), '-h', '127.0.0.1', '-k', '', '-c', 'fsync=off', '-c', 'full_page_writes=off'],
    ids,
  );
  const base = `postgres://postgres@127.0.0.1:${port}`;
  const admin = new pg.Client({ connectionString: `${base}/postgres` });
  await waitUntil('postgres', p, async () => {
    const c = new pg.Client({ connectionString: `${base}/postgres` });
    await c.connect();
    await c.end();
    return true;
  });
  await admin.connect();
  let n = 0;
  return {
    async newDatabase() {
      const name = `herald_${++n}`;
      await admin.query(`CREATE DATABASE ${name}`);
      return `${base}/${name}`;
    },
    async stop() {
      await admin.end().catch(() => {});
      // SIGINT: "fast" shutdown, which ends open sessions instead of waiting for them.
      await stopProc(p, 'SIGINT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Proxy {
  url: string;
  /** Connections handed to each upstream so far, by index. */
  connections: number[];
  /** New connections wait (accepted, not forwarded) until `release()`: a reconnect held back on purpose. */
  hold(): void;
  release(): void;
  /** Drops every connection open now, both ways, as a network failure would; new ones are still accepted. */
  cut(): void;
  close(): Promise<void>;
}

/**
 * A TCP load balancer in front of several instances: each new connection goes to the first upstream
 * that accepts it, so when one dies its clients' reconnects land on the next.
 */
export async function startProxy(ports: number[]): Promise<Proxy> {
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  const connections = ports.map(() => 0);
  let held: (() => void)[] | undefined;
  const server = net.createServer((client) => {
    track(client);
    client.pause();
    client.on('error', () => client.destroy());
    const tryUpstream = (i: number): void => {
      if (i >= ports.length || client.destroyed) {
        client.destroy();
        return;
      }
      const up = net.connect(ports[i]!, '127.0.0.1');
      up.once('error', () => tryUpstream(i + 1));
      up.once('connect', () => {
        connections[i]!++;
        track(up);
        up.removeAllListeners('error');
        up.on('error', () => up.destroy());
        up.on('close', () => client.destroy());
        client.on('close', () => up.destroy());
        client.pipe(up);
        up.pipe(client);
      });
    };
    if (held) held.push(() => tryUpstream(0));
    else tryUpstream(0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    connections,
    hold: () => (held ??= []),
    release() {
      const waiting = held ?? [];
      held = undefined;
      for (const go of waiting) go();
    },
    cut() {
      for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
