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

/** Durable POST /notifications with autocannon, then checks that every 201 is a committed row. */
export async function ingest(o: Options): Promise<Section> {
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};
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
