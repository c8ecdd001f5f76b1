// Ingest: durable POST /notifications as fast as autocannon sends them, every 201 checked against the
// rows on disk; then Herald is killed -9 in the middle of a publish flood, and every id answered 201
// must be in its database.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { projectFile } from '../../src/paths.js';
import { sleep } from '../../support/util.js';
import { cpuMsOf, spawnNode } from '../lib.js';
import { publish } from '../load.js';
import type { Options } from '../options.js';
import { fmt, log, type Row, type Section } from '../report.js';
import { publisherKey, startHerald } from '../servers.js';

/** Row count of a stopped Herald's database, or the ids in it. */
function committedIds(dataDir: string): Set<number> {
  const db = new Database(join(dataDir, 'herald.db'), { readonly: true });
  try {
    return new Set(db.prepare('SELECT id FROM notifications').pluck().all() as number[]);
  } finally {
    db.close();
  }
}

interface Autocannon {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; max: number };
  '2xx': number;
  non2xx: number;
  errors: number;
}

/** `seconds` of autocannon's durable POSTs to `port`: its JSON report. */
async function autocannon(o: Options, port: number, seconds: number): Promise<Autocannon> {
  const body = JSON.stringify({ user: 'u1', title: 'Your export is ready', body: 'report.csv', data: { url: '/files/42' }, type: 'export' });
  const proc = spawnNode(projectFile('node_modules', 'autocannon', 'autocannon.js'), [
    '-c', String(o.ingestConnections), '-d', String(seconds), '-m', 'POST',
    '-H', `authorization=Bearer ${publisherKey}`, '-H', 'content-type=application/json', '-b', body, '-j',
    `http://127.0.0.1:${port}/notifications`,
  ]);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const killer = setTimeout(() => proc.kill('SIGKILL'), (seconds + 60) * 1000);
  await new Promise((r) => proc.on('exit', r));
  clearTimeout(killer);
  return JSON.parse(out) as Autocannon;
}

const acLatency = (a: Autocannon) => `${a.latency.p50} / ${a.latency.p99} / ${a.latency.max} ms`;

/**
 * Durable POST /notifications with autocannon, then checks that every 201 is a committed row. Like
 * the latency and fan-out runs, the measured run follows `--warmup` seconds of the same load, reported
 * on its own row: a process just started compiles its hot paths in its first second (about 4,600/s, p99
 * 119 ms, against 10,800/s and 21 ms in the seconds after, measured against one server), and that
 * second alone decided the 10 s run's p99.
 */
export async function ingest(o: Options): Promise<Section> {
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};
  const s = await startHerald(o);
  let warm: Autocannon | null = null;
  let ac: Autocannon;
  let rowsOnDisk: number;
  let cpuUsPerPublish: number;
  try {
    if (o.warmup > 0) warm = await autocannon(o, s.port, o.warmup);
    const cpu0 = cpuMsOf(s.pid);
    ac = await autocannon(o, s.port, o.ingestSeconds);
    cpuUsPerPublish = ((cpuMsOf(s.pid) - cpu0) * 1000) / Math.max(1, ac['2xx']);
    await s.stop('SIGTERM', true);
    rowsOnDisk = committedIds(s.dataDir).size;
  } finally {
    await s.stop();
  }
  const answered = ac['2xx'] + (warm?.['2xx'] ?? 0);
  const failed = ac.non2xx + ac.errors + (warm ? warm.non2xx + warm.errors : 0);
  raw.ingest = { ...ac, warmup: warm, rowsOnDisk, cpuUsPerPublish };
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
    {
      scenario: '',
      metric: 'latency p50 / p99 / max',
      herald: null,
      peer: null,
      unit: '',
      text: [acLatency(ac), '–'],
      target: 'p99 < 30 ms',
      met: ac.latency.p99 < 30,
    },
    { scenario: '', metric: 'server CPU per publish', herald: cpuUsPerPublish, peer: null, unit: 'µs' },
    ...(warm
      ? [
          {
            scenario: '',
            metric: `the ${o.warmup} s warm-up before, just started (not counted above): notifications/s, latency p50 / p99 / max`,
            herald: null,
            peer: null,
            unit: '',
            text: [`${Math.round(warm.requests.average).toLocaleString('en-US')} /s, ${acLatency(warm)}`, '–'] as [string, string],
          },
        ]
      : []),
    {
      scenario: '',
      metric: '201s answered (warm-up included) / rows on disk',
      herald: null,
      peer: null,
      unit: '',
      text: [`${answered.toLocaleString('en-US')} / ${rowsOnDisk.toLocaleString('en-US')}`, '–'],
      target: 'rows ≥ 201s, no errors',
      met: rowsOnDisk >= answered && failed === 0,
    },
  );
  log(`ingest: ${fmt(ac.requests.average, '/s')}, ${cpuUsPerPublish.toFixed(0)} µs CPU each, p50 ${ac.latency.p50} ms, p99 ${ac.latency.p99} ms, ${ac['2xx']} 2xx, ${rowsOnDisk} rows`);

  // kill -9 in the middle of a publish flood: every id that was answered 201 must be in the database.
  const c = await startHerald(o);
  try {
    const pending = publish(c, { rate: 0, durationMs: 5_000, connections: 32, target: 'users', users: 100, keepIds: true });
    // The kill comes mid-flood: once publishes are committing (a loaded machine may take seconds to start
    // the load process), then a little later, so some have been answered.
    const started = Date.now();
    while (committedIds(c.dataDir).size === 0 && Date.now() - started < 15_000) await sleep(50);
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
  return { rows, raw };
}
