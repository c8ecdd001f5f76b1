// Reconnect storm: thousands of streams, a publisher publishing steadily with idempotency keys, the
// server killed with kill -9 and restarted on the same port and data; every stream reconnects by
// itself with its last id. Measured: from the restart until every stream is open again and has every
// acknowledged notification, /health latency meanwhile, the server's peak RSS, duplicates and gaps.
import { readFileSync, rmSync } from 'node:fs';
import { benchScript, Histogram, nowMs, spawnNode, Worker, type Msg } from '../lib.js';
import type { Options } from '../options.js';
import { fmt, log, type Row, type Section } from '../report.js';
import { jwtSecret, publisherKey, startHerald } from '../servers.js';
import { SteadyPublisher, type StormStats } from '../storm-load.js';

/** How long the scenario waits for every stream to catch up before it reports that they did not. */
const caughtUpWithinMs = 120_000;

/** The reconnect interval the clients use (the SSE `retry:` hint they are given). */
const retryMs = 1000;

const sum = (all: StormStats[], k: keyof StormStats): number => all.reduce((a, s) => a + s[k], 0);

/** The server's peak resident set (VmHWM), bytes. */
function peakRss(pid: number): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

/** The kernel's cap on a listen backlog (net.core.somaxconn). */
const somaxconn = (): number => Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));

/** Connects the kernel dropped, on any port, because an accept queue was full (TcpExt ListenOverflows). */
function listenOverflows(): number {
  const [names, values] = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
  const i = names!.split(' ').indexOf('ListenOverflows');
  return Number(values!.split(' ')[i]);
}

/** Herald's replay counters from /metrics: ring answers and store reads, by label. */
async function replayCounters(port: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(30_000) })).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^herald_replay_(ring|store_reads)_total\{\w+="(\w+)"\} (\d+)/gm)) out[`${m[1]}.${m[2]}`] = Number(m[3]);
  return out;
}

async function until(what: string, ms: number, pred: () => Promise<boolean>): Promise<boolean> {
  const deadline = nowMs() + ms;
  while (nowMs() < deadline) {
    if (await pred()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  log(`storm: gave up waiting for ${what} after ${ms} ms`);
  return false;
}

export async function storm(o: Options): Promise<Section> {
  const total = o.stormStreams;
  const env = {
    HERALD_RETRY_MS: String(retryMs),
    HERALD_REPLAY_RING: String(o.stormRing),
    // Every stream comes from 127.0.0.1 and resumes at once: behind one proxy address a deployment
    // needs the same (or a per-address rate of at least its streams per minute).
    HERALD_RESUME_RATE_PER_IP: '0',
    // Every stream may reconnect within one retry interval: the accept queue must hold them all, or the
    // kernel drops connects that TCP retries after 1, 3, 7, 15, 31 s (a tail no server work can shorten).
    // The kernel caps it at net.core.somaxconn: reported below with the connects it dropped.
    HERALD_LISTEN_BACKLOG: String(Math.max(4096, total)),
  };
  const first = await startHerald(o, env);
  const dataDir = first.dataDir;
  const workers = Array.from(
    { length: o.clients },
    () => new Worker(spawnNode(benchScript('storm-clients'), [JSON.stringify({ port: first.port, secret: jwtSecret, retryMs })], { ipc: true })),
  );
  const call = (msg: Msg, ms?: number) => Promise.all(workers.map((w, i) => w.call<Msg & StormStats>(typeof msg.count === 'number' ? { ...msg, prefix: `s${i}-` } : msg, ms)));
  let second: Awaited<ReturnType<typeof startHerald>> | undefined;
  let publisher: SteadyPublisher | undefined;
  try {
    const t0 = nowMs();
    await call({ op: 'open', count: Math.ceil(total / workers.length), wsEvery: o.stormWsEvery }, 300_000);
    log(`storm: ${total} streams open in ${(nowMs() - t0).toFixed(0)} ms`);
    publisher = new SteadyPublisher(first.port, publisherKey, o.stormRate);
    await new Promise((r) => setTimeout(r, 3000));
    const ackedBeforeKill = Math.max(...publisher.acked);
    const overflowsBefore = listenOverflows();
    await first.stop('SIGKILL', true);
    const killedAt = nowMs();
    second = await startHerald(o, { ...env, HERALD_DATA_DIR: dataDir, PORT: String(first.port) });
    const restartedAt = nowMs();
    const ackedAtRestart = publisher.acked.length;
    log(`storm: killed with ${ackedBeforeKill} acknowledged, restarted after ${(restartedAt - killedAt).toFixed(0)} ms`);
    await call({ op: 'watch', id: ackedBeforeKill });

    const health = new Histogram();
    let healthFailed = 0;
    let caught = false;
    const probe = (async () => {
      while (!caught && nowMs() - restartedAt < caughtUpWithinMs) {
        const s = nowMs();
        try {
          await fetch(`http://127.0.0.1:${second!.port}/health`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text());
          health.record(nowMs() - s);
        } catch {
          // Refused, cut or over 10 s: counted apart, not as a latency.
          healthFailed++;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    let stats: StormStats[] = [];
    let loggedAt = restartedAt;
    caught = await until('every stream caught up', caughtUpWithinMs, async () => {
      stats = await call({ op: 'stats' });
      if (nowMs() - loggedAt > 5000) {
        loggedAt = nowMs();
        log(`storm: +${(loggedAt - restartedAt).toFixed(0)} ms: ${sum(stats, 'connected')} streams open, lowest last id ${Math.min(...stats.map((s) => s.minLast))}`);
      }
      return stats.every((s) => s.caughtUpAt > 0);
    });
    // The live traffic the storm carried: the publisher's connect waits in the accept queue like every
    // stream's, and when it gets in before the storm's connects its backlog and its steady rate reach
    // every stream already back, which in these runs about doubled the storm (see the README's Results).
    const publishedDuring = publisher.acked.length - ackedAtRestart;
    await probe;
    const caughtUpMs = caught ? Math.max(...stats.map((s) => s.caughtUpAt)) - restartedAt : null;
    const reconnectedMs = stats.every((s) => s.reconnectedAt > 0) ? Math.max(...stats.map((s) => s.reconnectedAt)) - restartedAt : null;
    const droppedConnects = listenOverflows() - overflowsBefore;
    const counters = await replayCounters(second.port);
    await publisher.stop();
    const lastAcked = Math.max(...publisher.acked);
    await until('every stream at the last acknowledged id', 30_000, async () => {
      stats = await call({ op: 'stats' });
      return stats.every((s) => s.minLast >= lastAcked);
    });
    const rss = peakRss(second.pid);
    const result = {
      streams: sum(stats, 'streams'),
      ws: Math.ceil(total / (o.stormWsEvery || Infinity)),
      ring: o.stormRing,
      ackedBeforeKill,
      lastAcked,
      publishRetries: publisher.retries,
      publishedDuring,
      restartMs: restartedAt - killedAt,
      caughtUpMs,
      reconnectedMs,
      health: { p50: health.percentile(50), p99: health.percentile(99), max: health.max, n: health.count, failed: healthFailed },
      peakRss: rss,
      duplicates: sum(stats, 'duplicates'),
      gaps: sum(stats, 'gaps'),
      reloads: sum(stats, 'reloads'),
      refused: sum(stats, 'refused'),
      behind: stats.filter((s) => s.minLast < lastAcked).length,
      backlog: Math.min(Math.max(4096, total), somaxconn()),
      droppedConnects,
      counters,
    };
    log(`storm: ${JSON.stringify(result)}`);
    const name = `Reconnect storm: ${total.toLocaleString('en-US')} streams (${result.ws.toLocaleString('en-US')} WS), kill -9, restart${o.stormRing ? '' : ', no ring'}`;
    const ok = result.duplicates === 0 && result.gaps === 0 && result.behind === 0;
    const rows: Row[] = [
      { scenario: name, metric: 'restart → all caught up and live', herald: caughtUpMs, peer: null, unit: 'ms', target: '≤ 10 s, 0 gaps/dups', met: ok && caughtUpMs !== null && caughtUpMs <= 10_000 },
      { scenario: '', metric: 'restart → all reconnected', herald: reconnectedMs, peer: null, unit: 'ms' },
      {
        scenario: '',
        metric: 'broadcasts acknowledged meanwhile (the live traffic the storm carried)',
        herald: null,
        peer: null,
        unit: '',
        text: [caughtUpMs === null ? String(publishedDuring) : `${publishedDuring} (${((publishedDuring * 1000) / caughtUpMs).toFixed(1)}/s)`, ''],
      },
      {
        scenario: '',
        metric: '/health p50 / p99 / max during it',
        herald: null,
        peer: null,
        unit: 'ms',
        text: [`${fmt(result.health.p50, 'ms')} / ${fmt(result.health.p99, 'ms')} / ${fmt(result.health.max, 'ms')}`, ''],
      },
      {
        scenario: '',
        metric: 'accept queue (backlog, capped by net.core.somaxconn); connects it dropped',
        herald: null,
        peer: null,
        unit: '',
        text: [`${result.backlog.toLocaleString('en-US')}; ${droppedConnects.toLocaleString('en-US')}`, ''],
      },
      { scenario: '', metric: 'peak RSS after restart', herald: rss / 2 ** 20, peer: null, unit: 'MiB' },
      { scenario: '', metric: 'duplicates / gaps / reloads', herald: null, peer: null, unit: '', text: [`${result.duplicates} / ${result.gaps} / ${result.reloads}`, ''] },
      {
        scenario: '',
        metric: 'resumes: ring hit / miss / store catch-up; store reads',
        herald: null,
        peer: null,
        unit: '',
        text: [
          `${counters['ring.hit'] ?? 0} / ${counters['ring.miss'] ?? 0} / ${counters['ring.bypass'] ?? 0}; ${(counters['store_reads.catchup'] ?? 0) + (counters['store_reads.range'] ?? 0) + (counters['store_reads.states'] ?? 0)}`,
          '',
        ],
      },
    ];
    return { rows, raw: { [o.stormRing ? 'storm' : 'stormNoRing']: result } };
  } finally {
    await publisher?.stop();
    await Promise.all(workers.map((w) => w.stop()));
    await first.stop('SIGKILL', true);
    await second?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
