// `npm run bench [-- options]`: starts Herald (the built dist/src/server.js) and the Socket.IO peer as
// separate processes on 127.0.0.1 with fresh temp data dirs, drives them from separate load processes,
// prints one table and writes it with the raw numbers to bench/results/. Every phase is bounded in
// count and time, and every process it starts is stopped before it exits.
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { projectFile } from '../src/paths.js';
import { missingBackends, startPostgres, startRedis, type PostgresServer, type RedisServer } from '../test/backends.js';
import { benchScript, cpuMsOf, hardFdLimit, Histogram, nowMs, rssOf, sleep, spawnNode, Worker, type Msg } from './lib.js';

const usage = `usage: npm run bench -- [options]
  --quick               small sizes and short runs (a minute or two)
  --sizes 1000,5000     fan-out stream counts (default 1000,5000,10000,15000)
  --offered 400000      fan-out: deliveries/s offered (publish rate = offered / streams)
  --seconds 5           fan-out and latency: seconds of publishing
  --warmup 1            fan-out and latency: seconds of the same load before that, not measured
  --idle 20000          idle streams held (default 20000, or as many as the fd limit allows)
  --latency-streams 1000 --latency-rate 1000   the p99 scenario: user-targeted notifications/s
  --ingest-seconds 10 --ingest-connections 100  autocannon
  --catchup 10000       events behind for the catch-up scenario
  --fanout2-streams 2000  fan-out on two instances (PostgreSQL + Redis): streams, split across them
  --fanout2-rate 0      its broadcasts/s, all to one instance (0 = offered / streams)
  --clients 2           load processes holding streams
  --only a,b            scenarios: ingest,latency,fanout,fanout2,idle,catchup (default all)
  --no-peer             skip the Socket.IO peer
  --no-ws               skip the runs over Herald's WebSocket (latency, fan-out, idle)
  --cpu-prof            run Herald under node --cpu-prof (profiles in bench/results/profiles)
  --cpu-prof-clients    the same for the load processes holding streams
  --settle-ms 2000      idle: wait before reading the server's RSS
  --server FILE         the Herald build to run (default dist/src/server.js), to compare two builds
  --out FILE            JSON result file (default bench/results/bench-<time>.json)`;

function parseArgs(argv: string[]) {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (name: string, def: number): number => {
    const v = get(name);
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number, got ${v}`);
    return n;
  };
  if (argv.includes('--help')) {
    process.stdout.write(usage + '\n');
    process.exit(0);
  }
  const quick = argv.includes('--quick');
  const sizes = (get('sizes') ?? (quick ? '1000,5000' : '1000,5000,10000,15000')).split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--sizes must be whole numbers, got ${get('sizes')}`);
  // A server needs one descriptor per stream plus a few of its own (SQLite, stdio, listener).
  const fdRoom = hardFdLimit() - 100;
  return {
    quick,
    sizes,
    offered: num('offered', 400_000),
    seconds: num('seconds', quick ? 2 : 5),
    warmup: num('warmup', quick ? 0.5 : 1),
    idle: num('idle', quick ? 5000 : 20_000),
    latencyStreams: num('latency-streams', 1000),
    latencyRate: num('latency-rate', 1000),
    ingestSeconds: num('ingest-seconds', quick ? 3 : 10),
    ingestConnections: num('ingest-connections', 100),
    catchup: num('catchup', 10_000),
    fanout2Streams: Math.max(2, num('fanout2-streams', quick ? 1000 : 2000)),
    fanout2Rate: num('fanout2-rate', 0),
    clients: Math.max(1, num('clients', 2)),
    only: new Set((get('only') ?? 'ingest,latency,fanout,fanout2,idle,catchup').split(',')),
    peer: !argv.includes('--no-peer'),
    ws: !argv.includes('--no-ws'),
    cpuProf: argv.includes('--cpu-prof'),
    cpuProfClients: argv.includes('--cpu-prof-clients'),
    out: get('out'),
    server: get('server') ?? projectFile('dist', 'src', 'server.js'),
    fdRoom,
    /** Pause before reading RSS after opening idle streams. */
    settleMs: num('settle-ms', 2000),
  };
}

type Options = ReturnType<typeof parseArgs>;

const jwtSecret = 'bench-secret-that-is-long-enough-0123456789';
const publisherKey = 'bench-publisher-key-0123456789';
const resultsDir = projectFile('bench', 'results');

interface Server {
  name: 'herald' | 'peer';
  proto: 'sse' | 'ws' | 'sio';
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
    void exited.then(() => reject(new Error(`server exited:\n${out}`)));
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

/** Starts Herald; its streams are opened over SSE, or over its WebSocket with `proto: 'ws'`. */
async function startHerald(o: Options, env: Record<string, string> = {}, proto: 'sse' | 'ws' = 'sse'): Promise<Server> {
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
      HERALD_MAX_CONNECTIONS: '0', HERALD_MAX_CONNECTIONS_PER_IP: '0',
      ...env,
    },
    nodeArgs: o.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [],
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

async function startPeer(): Promise<Server> {
  const proc = spawnNode(benchScript('peer'), [], { env: { PORT: '0', JWT_SECRET: jwtSecret, PUBLISHER_KEY: publisherKey } });
  const p = await startProcess(proc);
  return { name: 'peer', proto: 'sio', port: p.port, pid: proc.pid!, dataDir: '', stop: p.stop };
}

/**
 * Source addresses for a pool. Loopback has one address's worth of ephemeral ports (32768-60999 here)
 * per server port, and every run gets a fresh server port, so up to ~25,000 streams need nothing
 * special. Beyond, each load process binds its own 127.0.x.y; not below, because a bind() before
 * connect() makes the kernel search for a free port per socket (Node cannot set
 * IP_BIND_ADDRESS_NO_PORT), which measured 2.5x slower to open 15,000 streams.
 */
let poolCounter = 0;
const portsPerAddress = 25_000;

class ClientPool {
  readonly workers: Worker[];
  constructor(o: Options, server: Server, n: number, streams: number) {
    const net = ++poolCounter;
    const profDir = join(resultsDir, 'profiles', 'clients');
    if (o.cpuProfClients) mkdirSync(profDir, { recursive: true });
    this.workers = Array.from({ length: n }, (_, i) => {
      const localAddress = streams > portsPerAddress ? `127.0.${net}.${2 + i}` : '';
      return new Worker(
        spawnNode(benchScript('clients'), [JSON.stringify({ proto: server.proto, port: server.port, localAddress, secret: jwtSecret })], {
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

interface PublishResult {
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
async function withPublisher<T>(server: Server, fn: (publish: Publish) => Promise<T>): Promise<T> {
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

const publish = (server: Server, args: Record<string, unknown>): Promise<PublishResult> => withPublisher(server, (p) => p(args));

// ---- Results -------------------------------------------------------------------------------------

interface Row {
  scenario: string;
  metric: string;
  herald: number | null;
  peer: number | null;
  unit: string;
  /** Herald/peer. */
  ratio?: string;
  target?: string;
  met?: boolean;
  /** Herald and peer cells as text, where one number does not say it (p50 / p99 / max). */
  text?: [string, string];
}

const rows: Row[] = [];
const raw: Record<string, unknown> = {};
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

const fmt = (v: number | null, unit: string): string => {
  if (v === null || Number.isNaN(v)) return '–';
  const digits = unit === 'cores' ? 2 : unit === '%' ? 1 : unit === 'ms' || unit === 'KiB' || unit === 'µs' ? (v < 10 ? 2 : v < 100 ? 1 : 0) : 0;
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) + (unit ? ` ${unit}` : '');
};

function table(): string {
  const head = ['Scenario', 'Metric', 'Herald', 'Socket.IO peer', 'Herald/peer', 'Target', 'Met'];
  const lines = rows.map((r) => [
    r.scenario,
    r.metric,
    r.text ? r.text[0] : fmt(r.herald, r.unit),
    r.text ? r.text[1] : fmt(r.peer, r.unit),
    r.ratio ?? '',
    r.target ?? '',
    r.met === undefined ? '' : r.met ? 'yes' : 'no',
  ]);
  const md = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [md(head), md(head.map(() => '---')), ...lines.map(md)].join('\n');
}

// ---- Scenarios -----------------------------------------------------------------------------------

/** Row count of a stopped Herald's database, or the ids in it. */
function committedIds(dataDir: string): Set<number> {
  const db = new Database(join(dataDir, 'herald.db'), { readonly: true });
  try {
    return new Set(db.prepare('SELECT id FROM notifications').pluck().all() as number[]);
  } finally {
    db.close();
  }
}

/** Durable POST /notifications with autocannon, then checks that every 201 is a committed row. */
async function ingest(o: Options): Promise<void> {
  const s = await startHerald(o);
  let ac: { requests: { average: number; total: number }; latency: { p50: number; p99: number; max: number }; '2xx': number; non2xx: number; errors: number };
  let rowsOnDisk: number;
  let cpuUsPerPublish: number;
  try {
    const body = JSON.stringify({ user: 'u1', title: 'Your export is ready', body: 'report.csv', data: { url: '/files/42' }, type: 'export' });
    const proc = spawnNode(projectFile('node_modules', 'autocannon', 'autocannon.js'), [
      '-c', String(o.ingestConnections), '-d', String(o.ingestSeconds), '-m', 'POST',
      '-H', `authorization=Bearer ${publisherKey}`, '-H', 'content-type=application/json', '-b', body, '-j',
      `http://127.0.0.1:${s.port}/notifications`,
    ]);
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const cpu0 = cpuMsOf(s.pid);
    const killer = setTimeout(() => proc.kill('SIGKILL'), (o.ingestSeconds + 60) * 1000);
    await new Promise((r) => proc.on('exit', r));
    clearTimeout(killer);
    ac = JSON.parse(out) as typeof ac;
    cpuUsPerPublish = ((cpuMsOf(s.pid) - cpu0) * 1000) / Math.max(1, ac['2xx']);
    await s.stop('SIGTERM', true);
    rowsOnDisk = committedIds(s.dataDir).size;
  } finally {
    await s.stop();
  }
  raw.ingest = { ...ac, rowsOnDisk, cpuUsPerPublish };
  rows.push(
    {
      scenario: `Ingest: autocannon -c ${o.ingestConnections}, ${o.ingestSeconds} s, synchronous=FULL`,
      metric: 'durable notifications/s',
      herald: ac.requests.average,
      peer: null,
      unit: '/s',
      target: '≥ 10,000/s',
      met: ac.requests.average >= 10_000,
    },
    { scenario: '', metric: 'latency p50 / p99 / max', herald: null, peer: null, unit: '', text: [`${ac.latency.p50} / ${ac.latency.p99} / ${ac.latency.max} ms`, '–'] },
    { scenario: '', metric: 'server CPU per publish', herald: cpuUsPerPublish, peer: null, unit: 'µs' },
    {
      scenario: '',
      metric: '201s answered / rows on disk',
      herald: null,
      peer: null,
      unit: '',
      text: [`${ac['2xx'].toLocaleString('en-US')} / ${rowsOnDisk.toLocaleString('en-US')}`, '–'],
      target: 'rows ≥ 201s, no errors',
      met: rowsOnDisk >= ac['2xx'] && ac.non2xx + ac.errors === 0,
    },
  );
  log(`ingest: ${fmt(ac.requests.average, '/s')}, ${cpuUsPerPublish.toFixed(0)} µs CPU each, p50 ${ac.latency.p50} ms, p99 ${ac.latency.p99} ms, ${ac['2xx']} 2xx, ${rowsOnDisk} rows`);

  // kill -9 in the middle of a publish flood: every id that was answered 201 must be in the database.
  const c = await startHerald(o);
  try {
    const pending = publish(c, { rate: 0, durationMs: 5_000, connections: 32, target: 'users', users: 100, keepIds: true });
    await sleep(Math.min(1_500, o.ingestSeconds * 500));
    await c.stop('SIGKILL', true);
    const res = await pending;
    const have = committedIds(c.dataDir);
    const missing = res.ids.filter((id) => !have.has(id)).length;
    raw.crash = { acked: res.ids.length, rows: have.size, missing };
    rows.push({
      scenario: 'kill -9 during ingest',
      metric: '201s answered / missing after',
      herald: null,
      peer: null,
      unit: '',
      text: [`${res.ids.length.toLocaleString('en-US')} / ${missing}`, '–'],
      target: '0 missing',
      met: missing === 0 && res.ids.length > 0,
    });
    log(`crash check: ${res.ids.length} acked, ${have.size} rows, ${missing} missing`);
  } finally {
    await c.stop();
  }
}

/** What the streams on one server got. */
/** POST→client latency of a run, ms. */
interface Percentiles {
  p50: number;
  p99: number;
  max: number;
}

interface InstanceResult extends Percentiles {
  port: number;
  opened: number;
  /** Null for user-targeted notifications spread over several servers (each goes to one random user). */
  expected: number | null;
  received: number;
}

interface FanoutResult extends Percentiles {
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
  clientCpu: number;
  rssMiB: number;
  /** The unmeasured run before it (`--warmup`), null without one. */
  warmup: WarmupResult | null;
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
async function fanout(o: Options, servers: Server[], streams: number, rate: number, target: 'broadcast' | 'users'): Promise<FanoutResult> {
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
    const job = { rate, target, prefix: 'f', users: streams };
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
      const serverCpuMs = () => servers.reduce((a, s) => a + cpuMsOf(s.pid), 0);
      const clientCpuMs = () => pools.reduce((a, pool) => a + pool.cpuMs(), 0);
      const cpu0 = serverCpuMs();
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
        clientCpu: (clientCpuMs() - clientCpu0) / elapsed,
        rssMiB: servers.reduce((a, s) => a + rssOf(s.pid), 0) / 1048576,
        warmup,
        instances: servers.map((s, i) => ({
          port: s.port,
          opened: opened[i]!.opened,
          expected: target === 'broadcast' ? published * opened[i]!.opened : servers.length === 1 ? published : null,
          received: st[i]!.received,
          ...percentiles(st[i]!.hist),
        })),
      };
    });
  } finally {
    await Promise.all(pools.map((pool) => pool.stop()));
  }
}

type Start = () => Promise<Server>;

/** What a scenario compares: Herald over SSE, Herald over its WebSocket, and the Socket.IO peer. */
interface Contenders {
  herald: Start;
  heraldWs: Start | null;
  peer: Start | null;
}

/** Runs `fn` on every contender of this run, one after another, and logs each result. */
async function eachContender<T>(c: Contenders, label: string, fn: (start: Start) => Promise<T>): Promise<{ herald: T; heraldWs: T | null; peer: T | null }> {
  const r: Record<string, T> = {};
  for (const [name, start] of Object.entries(c) as [keyof Contenders, Start | null][]) {
    if (!start) continue;
    r[name] = await fn(start);
    log(`${label} ${name}: ${JSON.stringify(r[name])}`);
  }
  return { herald: r.herald!, heraldWs: r.heraldWs ?? null, peer: r.peer ?? null };
}

/** Starts the servers one after another, runs `fn` with them, and stops every one that started, whatever happens. */
async function withServers<T>(starts: Start[], fn: (s: Server[]) => Promise<T>): Promise<T> {
  const servers: Server[] = [];
  try {
    for (const start of starts) servers.push(await start());
    return await fn(servers);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

const withServer = <T>(start: Start, fn: (s: Server) => Promise<T>): Promise<T> => withServers([start], ([s]) => fn(s!));

const lat = (x: Percentiles) => `${fmt(x.p50, 'ms')} / ${fmt(x.p99, 'ms')} / ${fmt(x.max, 'ms')}`;

const warm = (x: FanoutResult) => (x.warmup ? lat(x.warmup) : '–');

const rtt = (x: FanoutResult) => `${fmt(x.publishRttP50, 'ms')} / ${fmt(x.publishRttP99, 'ms')}`;

const ratio = (h: number | null, p: number | null): string => (h === null || p === null || !p ? '' : `${(h / p).toFixed(2)}×`);

async function latency(o: Options, c: Contenders): Promise<void> {
  const n = o.latencyStreams;
  const results = await eachContender(c, 'latency', (start) => withServer(start, (s) => fanout(o, [s], n, o.latencyRate, 'users')));
  // The same with HERALD_SQLITE_SYNC=normal (no fsync per commit): how much of the latency is the disk's.
  const normal = await withServer(
    () => startHerald(o, { HERALD_SQLITE_SYNC: 'normal' }),
    (s) => fanout(o, [s], n, o.latencyRate, 'users'),
  );
  log(`latency herald, synchronous=NORMAL: ${JSON.stringify(normal)}`);
  raw.latency = { ...results, heraldSyncNormal: normal };
  const { herald: h, heraldWs: w, peer: p } = results;
  const scen = `Latency: ${n.toLocaleString('en-US')} streams, ${o.latencyRate.toLocaleString('en-US')} user notifications/s`;
  rows.push(
    { scenario: scen, metric: 'POST→client p99', herald: h.p99, peer: p?.p99 ?? null, unit: 'ms', target: '< 20 ms', met: h.p99 < 20 },
    { scenario: '', metric: 'POST→client p50 / p99 / max', herald: null, peer: null, unit: '', text: [lat(h), p ? lat(p) : '–'] },
    { scenario: '', metric: 'the same, Herald with synchronous=NORMAL', herald: null, peer: null, unit: '', text: [lat(normal), '–'] },
    ...(w ? [{ scenario: '', metric: 'the same, Herald over its WebSocket', herald: null, peer: null, unit: '', text: [lat(w), '–'] as [string, string] }] : []),
    { scenario: '', metric: `the ${o.warmup} s warm-up before, just started (not counted above)`, herald: null, peer: null, unit: '', text: [warm(h), p ? warm(p) : '–'] },
    { scenario: '', metric: 'POST round trip p50 / p99', herald: null, peer: null, unit: '', text: [rtt(h), p ? rtt(p) : '–'] },
    { scenario: '', metric: 'delivered / expected', herald: h.received / h.expected * 100, peer: p ? (p.received / p.expected) * 100 : null, unit: '%' },
  );
}

/** Fan-out rows of one Herald run against the peer's; `label` names the transport when it is not SSE. */
function fanoutRows(x: FanoutResult, p: FanoutResult | null, label = ''): Row[] {
  const metric = (m: string) => (label ? `${label}: ${m}` : m);
  return [
    {
      scenario: '',
      metric: metric('delivered events/s'),
      herald: x.deliveredPerSec,
      peer: p?.deliveredPerSec ?? null,
      unit: '/s',
      ratio: ratio(x.deliveredPerSec, p?.deliveredPerSec ?? null),
    },
    { scenario: '', metric: metric('POST→client p50 / p99 / max'), herald: null, peer: null, unit: '', text: [lat(x), p ? lat(p) : '–'] },
    { scenario: '', metric: metric('delivered / expected'), herald: (x.received / x.expected) * 100, peer: p ? (p.received / p.expected) * 100 : null, unit: '%' },
    {
      scenario: '',
      metric: metric('server CPU per delivered event'),
      herald: x.serverCpuUsPerEvent,
      peer: p?.serverCpuUsPerEvent ?? null,
      unit: 'µs',
      ratio: ratio(x.serverCpuUsPerEvent, p?.serverCpuUsPerEvent ?? null),
    },
  ];
}

async function fanouts(o: Options, c: Contenders): Promise<void> {
  const all: Awaited<ReturnType<typeof eachContender<FanoutResult>>>[] = [];
  for (const n of o.sizes) {
    const rate = Math.max(1, Math.round(o.offered / n));
    const r = await eachContender(c, `fan-out ${n}`, (start) => withServer(start, (s) => fanout(o, [s], n, rate, 'broadcast')));
    all.push(r);
    const { herald: h, heraldWs: w, peer: p } = r;
    const [delivered, ...rest] = fanoutRows(h, p);
    rows.push(
      {
        ...delivered!,
        scenario: `Fan-out: ${n.toLocaleString('en-US')} streams, broadcast ${rate}/s for ${o.seconds} s`,
        target: '≥ 300,000/s, ≥ 2× peer',
        met: h.deliveredPerSec >= 300_000 && (!p || h.deliveredPerSec >= 2 * p.deliveredPerSec),
      },
      ...rest,
      { scenario: '', metric: 'server CPU (1.0 = one core)', herald: h.serverCpu, peer: p?.serverCpu ?? null, unit: 'cores' },
      ...(w ? fanoutRows(w, p, 'Herald over its WebSocket') : []),
    );
  }
  raw.fanout = all;
}

/**
 * Scale-out: Herald on a real PostgreSQL store and Redis bus (throwaway servers, as the scale-out
 * tests start them), the streams split across two instances and every broadcast published to the
 * first; then, for the ratio, the same on one instance with the same store and bus. Each run gets a
 * fresh database; the instances, PostgreSQL and Redis are stopped whatever happens.
 */
async function fanout2(o: Options): Promise<void> {
  const n = o.fanout2Streams;
  const rate = o.fanout2Rate || Math.max(1, Math.round(o.offered / n));
  const scen = `Fan-out on 2 instances (PostgreSQL + Redis): ${n.toLocaleString('en-US')} streams split across them, broadcast ${rate}/s for ${o.seconds} s to one`;
  const missing = missingBackends();
  if (missing.length > 0) {
    const why = `skipped: ${missing.join(' and ')} not installed (apt-get install -y ${missing.join(' ')})`;
    log(`fanout2 ${why}`);
    raw.fanout2 = { skipped: why };
    rows.push({ scenario: scen, metric: 'delivered events/s', herald: null, peer: null, unit: '', text: [why, '–'] });
    return;
  }
  let redis: RedisServer | undefined;
  let postgres: PostgresServer | undefined;
  let results: [FanoutResult, FanoutResult];
  try {
    const bus = (redis = await startRedis());
    const store = (postgres = await startPostgres());
    const run = async (instances: number): Promise<FanoutResult> => {
      const env = { HERALD_STORE: await store.newDatabase(), HERALD_BUS: bus.url };
      const starts = Array.from({ length: instances }, () => () => startHerald(o, env));
      const res = await withServers(starts, (servers) => fanout(o, servers, n, rate, 'broadcast'));
      log(`fanout2, ${instances} instance(s): ${JSON.stringify(res)}`);
      return res;
    };
    results = [await run(1), await run(2)];
  } finally {
    await postgres?.stop();
    await redis?.stop();
  }
  const [one, two] = results;
  const [near, far] = two.instances as [InstanceResult, InstanceResult];
  const pct = (x: { received: number; expected: number | null }) => (x.expected ? fmt((x.received / x.expected) * 100, '%') : '–');
  raw.fanout2 = { streams: n, rate, twoInstances: two, oneInstance: one, ratio: two.deliveredPerSec / one.deliveredPerSec };
  rows.push(
    { scenario: scen, metric: 'delivered events/s, 2 instances', herald: two.deliveredPerSec, peer: null, unit: '/s' },
    { scenario: '', metric: 'delivered events/s, 1 instance (same PostgreSQL + Redis)', herald: one.deliveredPerSec, peer: null, unit: '/s' },
    { scenario: '', metric: '2 instances / 1 instance', herald: null, peer: null, unit: '', text: [ratio(two.deliveredPerSec, one.deliveredPerSec), '–'] },
    { scenario: '', metric: 'POST→client p50 / p99 / max, 2 instances', herald: null, peer: null, unit: '', text: [lat(two), '–'] },
    { scenario: '', metric: 'POST→client p50 / p99 / max, 1 instance', herald: null, peer: null, unit: '', text: [lat(one), '–'] },
    { scenario: '', metric: 'POST round trip p50 / p99, 2 instances; 1 instance', herald: null, peer: null, unit: '', text: [`${rtt(two)}; ${rtt(one)}`, '–'] },
    { scenario: '', metric: 'POST→client p99, 2 instances: published to / other', herald: null, peer: null, unit: '', text: [`${fmt(near.p99, 'ms')} / ${fmt(far.p99, 'ms')}`, '–'] },
    {
      scenario: '',
      metric: 'delivered / expected, 2 instances: published to / other',
      herald: null,
      peer: null,
      unit: '',
      text: [`${pct(near)} / ${pct(far)}`, '–'],
      target: 'all, on each',
      met: two.instances.every((x) => x.received === x.expected),
    },
    { scenario: '', metric: 'delivered / expected, 1 instance', herald: (one.received / one.expected) * 100, peer: null, unit: '%' },
    {
      scenario: '',
      metric: 'server CPU per delivered event, 2 / 1 instances',
      herald: null,
      peer: null,
      unit: '',
      text: [`${fmt(two.serverCpuUsPerEvent, 'µs')} / ${fmt(one.serverCpuUsPerEvent, 'µs')}`, '–'],
    },
  );
}

interface IdleResult {
  streams: number;
  opened: number;
  acceptMs: number;
  baseMiB: number;
  halfMiB: number;
  rssMiB: number;
  /** RSS growth over the streams held: fixed costs of the burst (a grown young generation) included. */
  perStreamKiB: number;
  /** RSS growth from half to all the streams, per stream added: what one more stream costs. */
  marginalKiB: number;
}

/** Opens `n` idle streams in two halves, reading the server's RSS before, between and after. */
async function idleOne(o: Options, server: Server, n: number): Promise<IdleResult> {
  await sleep(500);
  const base = rssOf(server.pid);
  const pool = new ClientPool(o, server, o.clients, n);
  try {
    const first = await pool.open('i', Math.floor(n / 2));
    await sleep(o.settleMs);
    const half = rssOf(server.pid);
    const second = await pool.open('j', n - Math.floor(n / 2));
    await sleep(o.settleMs);
    const rss = rssOf(server.pid);
    const failed = first.failed + second.failed;
    if (failed > 0) log(`${server.name}: ${failed} of ${n} idle streams failed: ${first.firstError || second.firstError}`);
    const opened = first.opened + second.opened;
    return {
      streams: n,
      opened,
      acceptMs: first.ms + second.ms,
      baseMiB: base / 1048576,
      halfMiB: half / 1048576,
      rssMiB: rss / 1048576,
      perStreamKiB: (rss - base) / 1024 / opened,
      marginalKiB: (rss - half) / 1024 / Math.max(1, second.opened),
    };
  } finally {
    await pool.stop();
  }
}

async function idle(o: Options, c: Contenders): Promise<void> {
  const r = await eachContender(c, 'idle', (start) => withServer(start, (s) => idleOne(o, s, o.idle)));
  raw.idle = r;
  const { herald: h, heraldWs: w, peer: p } = r;
  const mem = (x: IdleResult) => `${x.baseMiB.toFixed(0)} → ${x.halfMiB.toFixed(0)} → ${x.rssMiB.toFixed(0)} MiB`;
  rows.push(
    {
      scenario: `Idle: ${o.idle.toLocaleString('en-US')} streams held`,
      metric: 'server RSS per stream',
      herald: h.perStreamKiB,
      peer: p?.perStreamKiB ?? null,
      unit: 'KiB',
      ratio: ratio(h.perStreamKiB, p?.perStreamKiB ?? null),
      target: `< 10 KiB at 20,000${o.fdRoom < 20_000 ? ` (${o.fdRoom.toLocaleString('en-US')} under this fd limit)` : ''}, ≤ 0.5× peer`,
      met: h.perStreamKiB < 10 && h.opened >= Math.min(20_000, o.fdRoom) && (!p || h.perStreamKiB <= p.perStreamKiB / 2),
    },
    {
      scenario: '',
      metric: 'marginal RSS per stream (second half)',
      herald: h.marginalKiB,
      peer: p?.marginalKiB ?? null,
      unit: 'KiB',
      ratio: ratio(h.marginalKiB, p?.marginalKiB ?? null),
    },
    { scenario: '', metric: 'streams open', herald: h.opened, peer: p?.opened ?? null, unit: '' },
    { scenario: '', metric: 'time to accept all', herald: h.acceptMs, peer: p?.acceptMs ?? null, unit: 'ms', ratio: ratio(h.acceptMs, p?.acceptMs ?? null) },
    { scenario: '', metric: 'server RSS: none → half → all', herald: null, peer: null, unit: '', text: [mem(h), p ? mem(p) : '–'] },
  );
  if (w) {
    rows.push(
      {
        scenario: '',
        metric: `Herald over its WebSocket: RSS per stream (${w.opened.toLocaleString('en-US')} open)`,
        herald: w.perStreamKiB,
        peer: p?.perStreamKiB ?? null,
        unit: 'KiB',
        ratio: ratio(w.perStreamKiB, p?.perStreamKiB ?? null),
      },
      { scenario: '', metric: 'Herald over its WebSocket: time to accept all', herald: w.acceptMs, peer: p?.acceptMs ?? null, unit: 'ms', ratio: ratio(w.acceptMs, p?.acceptMs ?? null) },
    );
  }
}

/** A client `behind` events behind reconnects with Last-Event-ID: time until it has them all. */
async function catchup(o: Options): Promise<void> {
  const behind = o.catchup;
  await withServer(
    () => startHerald(o),
    async (s) => {
      const pub = await publish(s, { rate: 0, durationMs: 120_000, connections: 32, total: behind + 100, keepIds: true });
      const head = Math.max(...pub.ids);
      const pool = new ClientPool(o, s, 1, 1);
      try {
        const times: number[] = [];
        let received = 0;
        for (let i = 0; i < 5; i++) {
          const r = await pool.workers[0]!.call<Msg & { ms: number; received: number }>({ op: 'catchup', user: `c${i}`, lastEventId: head - behind, expect: behind });
          times.push(r.ms);
          received = r.received;
        }
        times.sort((a, b) => a - b);
        raw.catchup = { behind, times, received };
        log(`catch-up: ${times.map((t) => t.toFixed(1)).join(', ')} ms; received ${received}`);
        rows.push(
          {
            scenario: `Catch-up: reconnect ${behind.toLocaleString('en-US')} events behind (5 runs)`,
            metric: 'time until live, median',
            herald: times[2]!,
            peer: null,
            unit: 'ms',
            target: '< 250 ms',
            met: times[2]! < 250 && received === behind,
          },
          { scenario: '', metric: 'slowest of 5', herald: times[4]!, peer: null, unit: 'ms' },
          { scenario: '', metric: 'events replayed', herald: received, peer: null, unit: '' },
        );
      } finally {
        await pool.stop();
      }
    },
  );
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.idle > o.fdRoom) {
    log(`--idle ${o.idle} is more than one process may hold under the fd limit; holding ${o.fdRoom}`);
    o.idle = o.fdRoom;
  }
  const started = new Date();
  const load = os.loadavg();
  log(`fd limit ${hardFdLimit()} (soft limit raised to it for every process); ${os.cpus().length} CPUs; load ${load.map((l) => l.toFixed(2)).join(' ')}`);
  const c: Contenders = {
    herald: () => startHerald(o),
    heraldWs: o.ws ? () => startHerald(o, {}, 'ws') : null,
    peer: o.peer ? startPeer : null,
  };
  if (o.only.has('ingest')) await ingest(o);
  if (o.only.has('latency')) await latency(o, c);
  if (o.only.has('fanout')) await fanouts(o, c);
  if (o.only.has('fanout2')) await fanout2(o);
  if (o.only.has('idle')) await idle(o, c);
  if (o.only.has('catchup')) await catchup(o);

  const out = table();
  process.stdout.write(out + '\n');
  const file = o.out ?? join(resultsDir, `bench-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(
    file,
    JSON.stringify(
      {
        started: started.toISOString(),
        finished: new Date().toISOString(),
        command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
        machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memMiB: Math.round(os.totalmem() / 1048576), loadBefore: load, loadAfter: os.loadavg(), node: process.version, fdLimit: hardFdLimit() },
        options: { ...o, only: [...o.only] },
        rows,
        table: out,
        raw,
      },
      null,
      2,
    ) + '\n',
  );
  log(`results: ${file}`);
}

// Interrupted: exit, which kills every process the bench started (see spawnNode).
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
