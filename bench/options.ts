// The bench's command line: every option, its default, and `--help`.
import { projectFile } from '../src/paths.js';
import { startNodeArgs } from '../support/util.js';
import { hardFdLimit } from './lib.js';

const usage = `usage: npm run bench -- [options]
  --quick               small sizes and short runs (a minute or two)
  --sizes 1000,5000     fan-out stream counts (default 1000,5000,10000,15000)
  --offered 400000      fan-out: deliveries/s offered (publish rate = offered / streams)
  --seconds 5           fan-out and latency: seconds of publishing
  --warmup 1            ingest, fan-out and latency: seconds of the same load before that, not measured
  --idle 20000          idle streams held (default 20000, or as many as the fd limit allows)
  --latency-streams 1000 --latency-rate 1000   the p99 scenario: user-targeted notifications/s
  --latency-large 10000  the same rate to this many streams, Herald (SSE) and the peer (0: skip)
  --peer-spin-us auto   latency: run the peer again, busy-waiting this long per publish; auto (the
                        default, 0 with --quick): Herald's event-loop CPU per event less the peer's,
                        as measured just before (0: skip)
  --ingest-seconds 10 --ingest-connections 100  autocannon
  --ingest-push-seconds 5 --ingest-push-rounds 4 --ingest-push-users 100
                        ingest-push: each round publishes that long to users with nothing set, and
                        as long to users with preferences and 2 push subscriptions each, in turns
  --catchup 10000       events behind for the catch-up scenario
  --fanout2-streams 2000  fan-out on two instances (PostgreSQL + Redis): streams, split across them
  --fanout2-rate 0      its broadcasts/s, all to one instance (0 = offered / streams)
  --storm-streams 15000 reconnect storm: streams (one in --storm-ws-every 10 over WebSocket), kill -9, restart
  --storm-rate 10       its broadcasts/s through the outage (× streams = the live deliveries/s)
  --storm-ring 10000    its HERALD_REPLAY_RING (0: every resume reads the store, for an A/B)
  --clients 2           load processes holding streams
  --only a,b            scenarios: ingest,ingest-push,latency,fanout,fanout2,idle,catchup,storm,pusher (default all;
                        pusher: fan-out over --sizes and --idle sockets over the Pusher protocol)
  --no-peer             skip the Socket.IO peer
  --no-ws               skip the runs over Herald's WebSocket (latency, fan-out, idle)
  --cpu-prof            run Herald under node --cpu-prof (profiles in bench/results/profiles)
  --cpu-prof-clients    the same for the load processes holding streams
  --settle-ms 2000      idle: wait before reading the server's RSS
  --server FILE         the Herald build to run (default dist/src/server.js), to compare two builds
  --herald-node-args "--flag ..."  node options for Herald's process instead of npm start's (package.json),
                        to compare V8 settings ("" for none)
  --out FILE            JSON result file (default bench/results/bench-<time>.json)`;

export function parseArgs(argv: string[]) {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = <D>(name: string, def: D): number | D => {
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
    latencyLarge: num('latency-large', quick ? 0 : 10_000),
    /** Latency: run the peer again, spending this many µs more CPU on each publish ('auto': see latency.ts; 0: not run). */
    peerSpinUs: get('peer-spin-us') === 'auto' ? ('auto' as const) : num('peer-spin-us', quick ? 0 : 'auto'),
    ingestSeconds: num('ingest-seconds', quick ? 3 : 10),
    ingestConnections: num('ingest-connections', 100),
    ingestPushSeconds: num('ingest-push-seconds', quick ? 2 : 5),
    ingestPushRounds: Math.max(1, num('ingest-push-rounds', 4)),
    ingestPushUsers: Math.max(1, num('ingest-push-users', 100)),
    catchup: num('catchup', 10_000),
    fanout2Streams: Math.max(2, num('fanout2-streams', quick ? 1000 : 2000)),
    fanout2Rate: num('fanout2-rate', 0),
    stormStreams: num('storm-streams', quick ? 2000 : 15_000),
    stormWsEvery: num('storm-ws-every', 10),
    stormRate: num('storm-rate', 10),
    stormRing: num('storm-ring', 10_000),
    clients: Math.max(1, num('clients', 2)),
    only: new Set((get('only') ?? 'ingest,ingest-push,latency,fanout,fanout2,idle,catchup,storm,pusher').split(',')),
    peer: !argv.includes('--no-peer'),
    ws: !argv.includes('--no-ws'),
    cpuProf: argv.includes('--cpu-prof'),
    cpuProfClients: argv.includes('--cpu-prof-clients'),
    out: get('out'),
    server: get('server') ?? projectFile('dist', 'src', 'server.js'),
    heraldNodeArgs: get('herald-node-args')?.split(' ').filter(Boolean) ?? startNodeArgs(),
    fdRoom,
    /** Pause before reading RSS after opening idle streams. */
    settleMs: num('settle-ms', 2000),
  };
}

export type Options = ReturnType<typeof parseArgs>;
