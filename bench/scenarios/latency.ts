// Latency: user-targeted notifications at a steady rate to --latency-streams streams, POST→client
// delay on every contender, on Herald again with synchronous=NORMAL, and on the peer again with its
// event loop spending Herald's CPU per event (--peer-spin-us); then the same rate to
// --latency-large streams on Herald (SSE) and the peer; and the fdatasync latency of this disk.
import { closeSync, openSync, rmSync, writeSync, fdatasyncSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { sleep } from '../../support/util.js';
import { measureDelivery, type DeliveryResult } from '../delivery.js';
import type { Options } from '../options.js';
import { fmt, lat, log, loopRows, rtt, warm, type Row, type Section } from '../report.js';
import { eachContender, startHerald, startPeer, withServer, type Contenders, type Start } from '../servers.js';

const count = (n: number) => n.toLocaleString('en-US');

export async function latency(o: Options, c: Contenders): Promise<Section> {
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};
  const n = o.latencyStreams;
  /** This scenario's measured run on one server: `n` streams, user notifications at --latency-rate. */
  const measure = (start: Start) => withServer(start, (s) => measureDelivery(o, [s], n, o.latencyRate, 'users'));
  const results = await eachContender(c, 'latency', measure);
  // The same with HERALD_SQLITE_SYNC=normal (no fsync per commit): how much of the latency is the disk's.
  const normal = await measure(() => startHerald(o, { HERALD_SQLITE_SYNC: 'normal' }));
  log(`latency herald, synchronous=NORMAL: ${JSON.stringify(normal)}`);
  // The peer again, its event loop spending as much CPU per event as Herald's: how much of a p99 on two
  // shared cores is that CPU alone (the peer does nothing else Herald does).
  const { herald: h, heraldWs: w, peer: p } = results;
  const spinUs = !p ? 0 : o.peerSpinUs === 'auto' ? Math.max(0, Math.round(h.loopCpuUsPerEvent - p.loopCpuUsPerEvent)) : o.peerSpinUs;
  const spun = spinUs > 0 ? await measure(() => startPeer(spinUs)) : null;
  if (spun) log(`latency peer, ${spinUs} µs more CPU per publish: ${JSON.stringify(spun)}`);
  const disk = await fdatasyncLatency();
  log(`latency: fdatasync ${JSON.stringify(disk)}`);
  raw.latency = { ...results, heraldSyncNormal: normal, ...(spun ? { peerSpun: { spinUs, ...spun } } : {}), fdatasync: disk };
  const scen = `Latency: ${count(n)} streams, ${count(o.latencyRate)} user notifications/s`;
  rows.push(
    { scenario: scen, metric: 'POST→client p99', herald: h.p99, peer: p?.p99 ?? null, unit: 'ms', ...withinOfPeer(h, p, 1) },
    { scenario: '', metric: 'POST→client p50 / p99 / max', herald: null, peer: null, unit: '', text: [lat(h), p ? lat(p) : '–'] },
    ...loopRows(h.loop),
    { scenario: '', metric: 'the same, Herald with synchronous=NORMAL', herald: null, peer: null, unit: '', text: [lat(normal), '–'] },
    ...loopRows(normal.loop, 'synchronous=NORMAL'),
    ...(spun
      ? [
          {
            scenario: '',
            metric: `the same, the peer busy-waiting ${spinUs} µs per publish (--peer-spin-us; auto: Herald's event-loop CPU per event less the peer's): p50 / p99 / max; server CPU per event, all threads / the event loop's`,
            herald: null,
            peer: null,
            unit: '',
            text: ['–', `${lat(spun)}; ${cpuSplit(spun)}`] as [string, string],
          },
        ]
      : []),
    ...(w ? [{ scenario: '', metric: 'the same, Herald over its WebSocket', herald: null, peer: null, unit: '', text: [lat(w), '–'] as [string, string] }, ...loopRows(w.loop, 'WebSocket')] : []),
    { scenario: '', metric: `the ${o.warmup} s warm-up before, just started (not counted above)`, herald: null, peer: null, unit: '', text: [warm(h), p ? warm(p) : '–'] },
    { scenario: '', metric: 'POST round trip p50 / p99', herald: null, peer: null, unit: '', text: [rtt(h), p ? rtt(p) : '–'] },
    { scenario: '', metric: 'delivered / expected', herald: h.received / h.expected * 100, peer: p ? (p.received / p.expected) * 100 : null, unit: '%' },
    // Herald's include its durable commit's: WAL frames (two syscalls each) and the writer thread's wake-ups.
    {
      scenario: '',
      metric: 'server write syscalls per event',
      herald: h.writesPerEvent,
      peer: p?.writesPerEvent ?? null,
      unit: '',
      text: [h.writesPerEvent.toFixed(1), p ? p.writesPerEvent.toFixed(1) : '–'],
    },
    { scenario: '', metric: 'server CPU per event', herald: h.serverCpuUsPerEvent, peer: p?.serverCpuUsPerEvent ?? null, unit: 'µs' },
    // Herald's writer thread (commits, fsyncs) runs beside its event loop; the peer's loop does nearly all of its work.
    { scenario: '', metric: "the same, on the event loop's thread", herald: h.loopCpuUsPerEvent, peer: p?.loopCpuUsPerEvent ?? null, unit: 'µs' },
    {
      scenario: '',
      metric: `this disk's fdatasync p50 / p99 / p999 / max (${count(disk.n)} × 4 KiB, 1 ms apart, in the data dir's file system): what a durable commit waits for`,
      herald: null,
      peer: null,
      unit: '',
      text: [`${fmt(disk.p50, 'ms')} / ${fmt(disk.p99, 'ms')} / ${fmt(disk.p999, 'ms')} / ${fmt(disk.max, 'ms')}`, '–'],
    },
  );
  if (o.latencyLarge > 0) rows.push(...(await large(o, c, raw)));
  return { rows, raw };
}

const cpuSplit = (r: DeliveryResult): string => `${r.serverCpuUsPerEvent.toFixed(0)} µs / ${r.loopCpuUsPerEvent.toFixed(0)} µs`;

/** The target: Herald's p99 at most `times` the peer's, in the same run; none without a peer. */
function withinOfPeer(h: DeliveryResult, p: DeliveryResult | null, times: number): Pick<Row, 'target' | 'met'> {
  const target = times === 1 ? "≤ the peer's" : `≤ ${times}× the peer's`;
  return p ? { target, met: h.p99 <= times * p.p99 } : { target };
}

/** The same rate to `--latency-large` streams: Herald over SSE and the peer only (each run opens that many streams). */
async function large(o: Options, c: Contenders, raw: Record<string, unknown>): Promise<Row[]> {
  const n = o.latencyLarge;
  const results = await eachContender({ herald: c.herald, heraldWs: null, peer: c.peer }, `latency ${n}`, (start) =>
    withServer(start, (s) => measureDelivery(o, [s], n, o.latencyRate, 'users')),
  );
  raw.latencyLarge = { streams: n, ...results };
  const { herald: h, peer: p } = results;
  return [
    {
      scenario: `Latency: ${count(n)} streams, ${count(o.latencyRate)} user notifications/s`,
      metric: 'POST→client p99',
      herald: h.p99,
      peer: p?.p99 ?? null,
      unit: 'ms',
      ...withinOfPeer(h, p, 2),
    },
    { scenario: '', metric: 'POST→client p50 / p99 / max', herald: null, peer: null, unit: '', text: [lat(h), p ? lat(p) : '–'] },
    ...loopRows(h.loop),
    { scenario: '', metric: 'delivered / expected', herald: h.received / h.expected * 100, peer: p ? (p.received / p.expected) * 100 : null, unit: '%' },
  ];
}

/** fdatasync after a 4 KiB write, 2,000 times 1 ms apart, on a file in the directory Herald's data dirs go to. */
async function fdatasyncLatency(): Promise<{ n: number; p50: number; p99: number; p999: number; max: number }> {
  const file = join(os.tmpdir(), `herald-bench-fsync-${process.pid}`);
  const fd = openSync(file, 'w');
  const page = Buffer.alloc(4096, 1);
  const ms: number[] = [];
  try {
    for (let i = 0; i < 2000; i++) {
      writeSync(fd, page, 0, page.length, (i % 256) * page.length);
      const t0 = performance.now();
      fdatasyncSync(fd);
      ms.push(performance.now() - t0);
      await sleep(1);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  ms.sort((a, b) => a - b);
  const q = (f: number) => ms[Math.min(ms.length - 1, Math.floor(f * ms.length))]!;
  return { n: ms.length, p50: q(0.5), p99: q(0.99), p999: q(0.999), max: ms[ms.length - 1]! };
}
