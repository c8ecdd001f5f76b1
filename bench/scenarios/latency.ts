// Latency: user-targeted notifications at a steady rate to --latency-streams streams, POST→client
// delay on every contender, and on Herald again with synchronous=NORMAL.
import { measureDelivery } from '../delivery.js';
import type { Options } from '../options.js';
import { lat, log, loopRows, rtt, warm, type Row, type Section } from '../report.js';
import { eachContender, startHerald, withServer, type Contenders } from '../servers.js';

export async function latency(o: Options, c: Contenders): Promise<Section> {
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};
  const n = o.latencyStreams;
  const results = await eachContender(c, 'latency', (start) => withServer(start, (s) => measureDelivery(o, [s], n, o.latencyRate, 'users')));
  // The same with HERALD_SQLITE_SYNC=normal (no fsync per commit): how much of the latency is the disk's.
  const normal = await withServer(
    () => startHerald(o, { HERALD_SQLITE_SYNC: 'normal' }),
    (s) => measureDelivery(o, [s], n, o.latencyRate, 'users'),
  );
  log(`latency herald, synchronous=NORMAL: ${JSON.stringify(normal)}`);
  raw.latency = { ...results, heraldSyncNormal: normal };
  const { herald: h, heraldWs: w, peer: p } = results;
  const scen = `Latency: ${n.toLocaleString('en-US')} streams, ${o.latencyRate.toLocaleString('en-US')} user notifications/s`;
  rows.push(
    { scenario: scen, metric: 'POST→client p99', herald: h.p99, peer: p?.p99 ?? null, unit: 'ms', target: '< 20 ms', met: h.p99 < 20 },
    { scenario: '', metric: 'POST→client p50 / p99 / max', herald: null, peer: null, unit: '', text: [lat(h), p ? lat(p) : '–'] },
    ...loopRows(h.loop),
    { scenario: '', metric: 'the same, Herald with synchronous=NORMAL', herald: null, peer: null, unit: '', text: [lat(normal), '–'] },
    ...loopRows(normal.loop, 'synchronous=NORMAL'),
    ...(w ? [{ scenario: '', metric: 'the same, Herald over its WebSocket', herald: null, peer: null, unit: '', text: [lat(w), '–'] as [string, string] }, ...loopRows(w.loop, 'WebSocket')] : []),
    { scenario: '', metric: `the ${o.warmup} s warm-up before, just started (not counted above)`, herald: null, peer: null, unit: '', text: [warm(h), p ? warm(p) : '–'] },
    { scenario: '', metric: 'POST round trip p50 / p99', herald: null, peer: null, unit: '', text: [rtt(h), p ? rtt(p) : '–'] },
    { scenario: '', metric: 'delivered / expected', herald: h.received / h.expected * 100, peer: p ? (p.received / p.expected) * 100 : null, unit: '%' },
  );
  return { rows, raw };
}
