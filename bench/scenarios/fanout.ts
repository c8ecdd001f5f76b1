// Fan-out: broadcasts to N streams at `offered / N` per second, for each --sizes N, on every contender.
import { measureDelivery, type DeliveryResult } from '../delivery.js';
import type { Options } from '../options.js';
import { lat, loopRows, ratio, type Row, type Section } from '../report.js';
import { eachContender, withServer, type Contenders } from '../servers.js';

/** Fan-out rows of one Herald run against the peer's; `label` names the transport when it is not SSE. */
export function fanoutRows(x: DeliveryResult, p: DeliveryResult | null, label = ''): Row[] {
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
    ...loopRows(x.loop, label),
    { scenario: '', metric: metric('delivered / expected'), herald: (x.received / x.expected) * 100, peer: p ? (p.received / p.expected) * 100 : null, unit: '%' },
    {
      scenario: '',
      metric: metric('server write syscalls per delivered event'),
      herald: x.writesPerEvent,
      peer: p?.writesPerEvent ?? null,
      unit: '',
      text: [x.writesPerEvent.toFixed(3), p ? p.writesPerEvent.toFixed(3) : '–'],
    },
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

export async function fanout(o: Options, c: Contenders): Promise<Section> {
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};
  const all: Awaited<ReturnType<typeof eachContender<DeliveryResult>>>[] = [];
  for (const n of o.sizes) {
    const rate = Math.max(1, Math.round(o.offered / n));
    const r = await eachContender(c, `fan-out ${n}`, (start) => withServer(start, (s) => measureDelivery(o, [s], n, rate, 'broadcast')));
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
  return { rows, raw };
}
