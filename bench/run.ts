// `npm run bench [-- options]`: starts Herald (the built dist/src/server.js) and the Socket.IO peer as
// separate processes on 127.0.0.1 with fresh temp data dirs, drives them from separate load processes,
// prints one table and writes it with the raw numbers to bench/results/. Every phase is bounded in
// count and time, and every process it starts is stopped before it exits.
// This file is the runner: the options (options.ts), the scenarios asked for (one file each in
// scenarios/), the table and JSON result (report.ts); servers.ts and load.ts start the processes.
import os from 'node:os';
import { join } from 'node:path';
import { hardFdLimit } from './lib.js';
import { parseArgs, type Options } from './options.js';
import { log, table, writeResult, type Row, type Section } from './report.js';
import { catchup } from './scenarios/catchup.js';
import { fanout } from './scenarios/fanout.js';
import { fanout2 } from './scenarios/fanout2.js';
import { idle } from './scenarios/idle.js';
import { ingest } from './scenarios/ingest.js';
import { ingestPush } from './scenarios/ingest-push.js';
import { latency } from './scenarios/latency.js';
import { storm } from './scenarios/storm.js';
import { pusher } from './scenarios/pusher.js';
import { resultsDir, startHerald, startPeer, type Contenders } from './servers.js';

/** Every scenario by its `--only` name, in the order they run and appear in the table. */
const scenarios: [string, (o: Options, c: Contenders) => Promise<Section>][] = [
  ['ingest', ingest],
  ['ingest-push', ingestPush],
  ['latency', latency],
  ['fanout', fanout],
  ['fanout2', fanout2],
  ['idle', idle],
  ['catchup', catchup],
  ['storm', storm],
  ['pusher', pusher],
];

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
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};
  for (const [name, run] of scenarios) {
    if (!o.only.has(name)) continue;
    const section = await run(o, c);
    rows.push(...section.rows);
    Object.assign(raw, section.raw);
  }

  const out = table(rows);
  process.stdout.write(out + '\n');
  const file = o.out ?? join(resultsDir, `bench-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeResult(file, { started, loadBefore: load, options: o, rows, table: out, raw });
  log(`results: ${file}`);
}

// Interrupted: exit, which kills every process the bench started (see spawnNode).
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
