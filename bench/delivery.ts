// The measurement under the latency and fan-out scenarios: streams held on one or more servers, a
// publisher at a fixed rate, and what the clients got (counts, POST→client latency, server CPU).
import { sleep } from '../support/util.js';
import { cpuMsOf, Histogram, nowMs, rssOf, writeSyscallsOf } from './lib.js';
import { ClientPool, withPublisher, type PublishResult } from './load.js';
import { loopWindow, type LoopStats } from './loop.js';
import type { Options } from './options.js';
import { log } from './report.js';
import { pusherBenchTopic, type Server } from './servers.js';

/** POST→client latency of a run, ms. */
export interface Percentiles {
  p50: number;
  p99: number;
  max: number;
}

/** What the streams on one server got. */
export interface InstanceResult extends Percentiles {
  port: number;
  opened: number;
  /** Null for user-targeted notifications spread over several servers (each goes to one random user). */
  expected: number | null;
  received: number;
  loop: LoopStats | null;
}

/** What one run got, over all its servers. */
export interface DeliveryResult extends Percentiles {
  streams: number;
  opened: number;
  rate: number;
  published: number;
  publishRttP50: number;
  publishRttP99: number;
  expected: number;
  received: number;
  deliveredPerSec: number;
  /** Summed over the servers, as are the CPU figures and RSS below. */
  serverCpu: number;
  /** Server CPU time per delivered event (publish and commit included): what it costs, whatever the machine's load. */
  serverCpuUsPerEvent: number;
  /** The part of it on the servers' main threads (their event loops). */
  loopCpuUsPerEvent: number;
  clientCpu: number;
  /** The servers' write syscalls per delivered event: below 1 when one write carries several events. */
  writesPerEvent: number;
  rssMiB: number;
  /** The unmeasured run before it (`--warmup`), null without one. */
  warmup: WarmupResult | null;
  /** The first server's event loop during the measured run (null for the peer). */
  loop: LoopStats | null;
  /** Per server, the first being the one published to. */
  instances: InstanceResult[];
}

interface WarmupResult extends Percentiles {
  seconds: number;
  expected: number;
  received: number;
}

type PoolStats = Awaited<ReturnType<ClientPool['stats']>>;

const receivedOf = (all: PoolStats[]) => all.reduce((a, x) => a + x.received, 0);

const percentiles = (h: Histogram): Percentiles => ({ p50: h.percentile(50), p99: h.percentile(99), max: h.max });

function mergedHist(all: PoolStats[]): Histogram {
  const hist = new Histogram();
  for (const x of all) hist.merge(x.hist.toJSON());
  return hist;
}

/** Waits for the tail: until `expected` events arrived, or nothing more arrives for 5 s (bounded at 30 s). */
async function awaitDeliveries(stats: () => Promise<PoolStats[]>, expected: number): Promise<PoolStats[]> {
  let st = await stats();
  for (let last = -1, since = nowMs(), until = nowMs() + 30_000; receivedOf(st) < expected && nowMs() < until; ) {
    await sleep(250);
    st = await stats();
    if (receivedOf(st) !== last) {
      last = receivedOf(st);
      since = nowMs();
    } else if (nowMs() - since > 5_000) break;
  }
  return st;
}

/**
 * Opens `streams` streams split evenly across `servers`, publishes at `rate`/s for `seconds` to the
 * first server, and measures what the clients got. The load processes (as many as `--clients` and
 * the stream count allow) are shared out among the servers, at least one each.
 */
export async function measureDelivery(o: Options, servers: Server[], streams: number, rate: number, target: 'broadcast' | 'users'): Promise<DeliveryResult> {
  // A Pusher socket gets no Herald broadcast, only its channels: the broadcast goes to the channel they all hold.
  const topic = servers[0]!.proto === 'pusher' ? pusherBenchTopic : undefined;
  const workers = Math.max(1, Math.round(Math.min(o.clients, Math.max(1, Math.ceil(streams / 500))) / servers.length));
  /** Server i holds streams first(i) .. first(i + 1) - 1. */
  const first = (i: number) => Math.floor((streams * i) / servers.length);
  const split = servers.map((_, i) => first(i + 1) - first(i));
  const pools: ClientPool[] = [];
  try {
    for (const [i, server] of servers.entries()) pools.push(new ClientPool(o, server, workers, split[i]!));
    const opened = await Promise.all(pools.map((pool, i) => pool.open('f', split[i]!, first(i))));
    for (const [i, r] of opened.entries()) {
      if (r.failed > 0) log(`${servers[i]!.name}: ${r.failed} of ${split[i]} streams failed to open: ${r.firstError}`);
    }
    const openedAll = opened.reduce((a, r) => a + r.opened, 0);
    await sleep(300);
    const stats = () => Promise.all(pools.map((pool) => pool.stats()));
    /** An unanswered publish may still be delivered; a refused one is not. */
    const expectedOf = (pub: PublishResult) => (target === 'broadcast' ? (pub.ok + pub.unanswered) * openedAll : pub.ok + pub.unanswered);
    const job = { rate, target, prefix: 'f', users: streams, ...(topic && { topic }) };
    return await withPublisher(servers[0]!, async (run) => {
      // The same load, not measured, first: a server's first second after start runs its publish and
      // delivery paths unoptimised (V8 compiles them while they run), and that second alone would
      // decide a p99. Reported apart as `warmup`.
      let warmup: WarmupResult | null = null;
      if (o.warmup > 0) {
        const pub = await run({ ...job, durationMs: o.warmup * 1000 });
        const expected = expectedOf(pub);
        const st = await awaitDeliveries(stats, expected);
        warmup = { seconds: o.warmup, expected, received: receivedOf(st), ...percentiles(mergedHist(st)) };
      }
      await Promise.all(pools.map((pool) => pool.reset()));
      /** The servers' CPU ms so far: every thread's, or with `mainThread` their event loops' alone. */
      const serverCpuMs = (mainThread = false) => servers.reduce((a, s) => a + cpuMsOf(s.pid, mainThread), 0);
      const clientCpuMs = () => pools.reduce((a, pool) => a + pool.cpuMs(), 0);
      const loops = await Promise.all(servers.map(loopWindow));
      const serverWrites = () => servers.reduce((a, s) => a + writeSyscallsOf(s.pid), 0);
      const writes0 = serverWrites();
      const cpu0 = serverCpuMs();
      const loopCpu0 = serverCpuMs(true);
      const clientCpu0 = clientCpuMs();
      const t0 = nowMs();
      const pub = await run({ ...job, durationMs: o.seconds * 1000 });
      if (pub.failed > 0) log(`${servers[0]!.name}: ${pub.failed} publishes failed: ${pub.firstError}`);
      const published = pub.ok + pub.unanswered;
      const expected = expectedOf(pub);
      const st = await awaitDeliveries(stats, expected);
      const received = receivedOf(st);
      const elapsed = nowMs() - t0;
      const serverCpuUsed = serverCpuMs() - cpu0;
      const loopCpuUsed = serverCpuMs(true) - loopCpu0;
      const writesUsed = serverWrites() - writes0;
      const loop = await Promise.all(loops.map((end) => end()));
      // From the first publish to the last delivery: the rate the clients actually got events at.
      const span = (Math.max(...st.map((x) => x.lastAt)) - t0) / 1000;
      return {
        streams,
        opened: openedAll,
        rate,
        published,
        publishRttP50: pub.rttP50,
        publishRttP99: pub.rttP99,
        expected,
        received,
        deliveredPerSec: received / span,
        ...percentiles(mergedHist(st)),
        serverCpu: serverCpuUsed / elapsed,
        serverCpuUsPerEvent: (serverCpuUsed * 1000) / Math.max(1, received),
        loopCpuUsPerEvent: (loopCpuUsed * 1000) / Math.max(1, received),
        clientCpu: (clientCpuMs() - clientCpu0) / elapsed,
        writesPerEvent: writesUsed / Math.max(1, received),
        rssMiB: servers.reduce((a, s) => a + rssOf(s.pid), 0) / 1048576,
        warmup,
        loop: loop[0]!,
        instances: servers.map((s, i) => ({
          port: s.port,
          opened: opened[i]!.opened,
          expected: target === 'broadcast' ? published * opened[i]!.opened : servers.length === 1 ? published : null,
          received: st[i]!.received,
          loop: loop[i]!,
          ...percentiles(st[i]!.hist),
        })),
      };
    });
  } finally {
    await Promise.all(pools.map((pool) => pool.stop()));
  }
}
