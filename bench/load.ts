// The load processes a scenario drives over IPC: pools of clients holding streams (clients.ts) and
// the publisher (publisher.ts). Each is a separate process, stopped when its pool or run ends.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { benchScript, cpuMsOf, Histogram, nowMs, spawnNode, Worker, type Msg } from './lib.js';
import type { Options } from './options.js';
import { jwtSecret, publisherKey, pusherBench, resultsDir, type Server } from './servers.js';

/**
 * Source addresses for a pool. Loopback has one address's worth of ephemeral ports (32768-60999 here)
 * per server port, and every run gets a fresh server port, so up to ~25,000 streams need nothing
 * special. Beyond, each load process binds its own 127.0.x.y; not below, because a bind() before
 * connect() makes the kernel search for a free port per socket (Node cannot set
 * IP_BIND_ADDRESS_NO_PORT), which measured 2.5x slower to open 15,000 streams.
 */
let poolCounter = 0;
const portsPerAddress = 25_000;

export class ClientPool {
  readonly workers: Worker[];
  constructor(o: Options, server: Server, n: number, streams: number) {
    const net = ++poolCounter;
    const profDir = join(resultsDir, 'profiles', 'clients');
    if (o.cpuProfClients) mkdirSync(profDir, { recursive: true });
    this.workers = Array.from({ length: n }, (_, i) => {
      const localAddress = streams > portsPerAddress ? `127.0.${net}.${2 + i}` : '';
      return new Worker(
        spawnNode(benchScript('clients'), [JSON.stringify({ proto: server.proto, port: server.port, localAddress, secret: jwtSecret, key: pusherBench.key, channel: pusherBench.channel })], {
          ipc: true,
          nodeArgs: o.cpuProfClients ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [],
        }),
      );
    });
  }

  /** Opens `total` streams for users `${prefix}${offset}..${offset + total - 1}`, split across the load processes. */
  async open(prefix: string, total: number, offset = 0): Promise<{ opened: number; failed: number; firstError: string; ms: number }> {
    const per = Math.ceil(total / this.workers.length);
    const t0 = nowMs();
    const answers = await Promise.all(
      this.workers.map((w, i) =>
        w.call<Msg & { opened: number; failed: number; firstError: string }>(
          { op: 'open', prefix, offset: offset + i * per, count: Math.max(0, Math.min(per, total - i * per)), concurrency: 100, timeoutMs: 120_000 },
          180_000,
        ),
      ),
    );
    return {
      opened: answers.reduce((a, x) => a + x.opened, 0),
      failed: answers.reduce((a, x) => a + x.failed, 0),
      firstError: answers.map((x) => x.firstError).find(Boolean) ?? '',
      ms: nowMs() - t0,
    };
  }

  async reset(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.call({ op: 'reset' })));
  }

  async stats(): Promise<{ received: number; hist: Histogram; firstAt: number; lastAt: number }> {
    const all = await Promise.all(
      this.workers.map((w) =>
        w.call<Msg & { received: number; hist: { pairs: [number, number][]; max: number }; firstAt: number; lastAt: number }>({ op: 'stats' }),
      ),
    );
    const hist = new Histogram();
    for (const a of all) hist.merge(a.hist);
    const active = all.filter((a) => a.received > 0);
    return {
      received: all.reduce((a, x) => a + x.received, 0),
      hist,
      firstAt: Math.min(...active.map((a) => a.firstAt)),
      lastAt: Math.max(...active.map((a) => a.lastAt)),
    };
  }

  /** CPU ms the load processes have used so far. */
  cpuMs(): number {
    return this.workers.reduce((a, w) => a + cpuMsOf(w.proc.pid!), 0);
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop()));
  }
}

export interface PublishResult {
  sent: number;
  ok: number;
  failed: number;
  /** Still unanswered when the publisher gave up waiting. */
  unanswered: number;
  /** POST round trip, ms. */
  rttP50: number;
  rttP99: number;
  firstError: string;
  ms: number;
  ids: number[];
}

type Publish = (args: Record<string, unknown>) => Promise<PublishResult>;

/** Runs `fn` with one publisher process for `server`: its runs share the process and its connections. */
export async function withPublisher<T>(server: Server, fn: (publish: Publish) => Promise<T>): Promise<T> {
  const w = new Worker(spawnNode(benchScript('publisher'), [], { ipc: true }));
  try {
    return await fn((args) =>
      w.call<Msg & PublishResult>(
        { op: 'publish', port: server.port, key: publisherKey, connections: 32, target: 'broadcast', prefix: 'u', users: 1, keepIds: false, ...args },
        180_000,
      ),
    );
  } finally {
    await w.stop();
  }
}

export const publish = (server: Server, args: Record<string, unknown>): Promise<PublishResult> => withPublisher(server, (p) => p(args));
