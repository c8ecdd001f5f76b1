// The server's event loop over one measured run, read from Herald's /metrics: how late its loop ran
// (event-loop delay) and how long garbage collection stopped it.
import type { Server } from './servers.js';

/** One measured run's event loop, ms; null for a server without Herald's /metrics (the peer). */
export interface LoopStats {
  delayP50: number;
  delayP99: number;
  delayMax: number;
  /** GC pauses of every kind, summed; and their count. */
  gcTotalMs: number;
  gcCount: number;
  /** The longest GC pause, as the upper bound of its histogram bucket. */
  gcMaxMs: number;
}

/**
 * prom-client samples the delay with a timer every 10 ms (its default precision) and records the
 * whole interval between two samples, the 10 ms included: that much is not delay.
 */
const samplingMs = 10;

type Sample = Map<string, number>;

/** Every sample line of a Prometheus text exposition, by its name and labels as written. */
async function scrape(server: Server): Promise<Sample> {
  const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
  if (!res.ok) throw new Error(`GET /metrics: ${res.status}`);
  const out: Sample = new Map();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

const gcSeries = /^nodejs_gc_duration_seconds_(sum|count|bucket)\{(?:le="([^"]+)",)?kind="(\w+)"/;

/** The longest pause between two scrapes: per kind, the smallest bucket bound holding every new pause. */
function gcMaxMs(before: Sample, after: Sample): number {
  const added = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
  /** Per kind: [bound in ms, pauses at or under it] for every finite bucket. */
  const buckets = new Map<string, [number, number][]>();
  for (const key of after.keys()) {
    const m = gcSeries.exec(key);
    if (!m || m[1] !== 'bucket' || m[2] === '+Inf') continue;
    const list = buckets.get(m[3]!) ?? [];
    list.push([Number(m[2]) * 1000, added(key)]);
    buckets.set(m[3]!, list);
  }
  let max = 0;
  for (const [kind, list] of buckets) {
    const pauses = added(`nodejs_gc_duration_seconds_count{kind="${kind}"}`);
    if (pauses === 0) continue;
    // Buckets are cumulative: the first to hold every pause bounds the longest.
    const first = list.sort((x, y) => x[0] - y[0]).find(([, n]) => n === pauses);
    max = Math.max(max, first ? first[0] : Infinity);
  }
  return max;
}

/**
 * Starts a window on `server`'s event loop; the function it returns ends it and reads what the loop
 * did in between. prom-client resets its event-loop histogram at every scrape, so the first scrape
 * starts the window. Null for the peer, which has no such metrics.
 */
export async function loopWindow(server: Server): Promise<() => Promise<LoopStats | null>> {
  if (server.name !== 'herald') return async () => null;
  const before = await scrape(server);
  return async () => {
    const after = await scrape(server);
    const sum = (field: 'sum' | 'count') => {
      let total = 0;
      for (const [key, v] of after) {
        const m = gcSeries.exec(key);
        if (m && m[1] === field) total += v - (before.get(key) ?? 0);
      }
      return total;
    };
    const delay = (name: string) => Math.max(0, (after.get(`nodejs_eventloop_lag_${name}_seconds`) ?? NaN) * 1000 - samplingMs);
    return { delayP50: delay('p50'), delayP99: delay('p99'), delayMax: delay('max'), gcTotalMs: sum('sum') * 1000, gcCount: sum('count'), gcMaxMs: gcMaxMs(before, after) };
  };
}
